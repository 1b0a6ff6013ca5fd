package pyclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/storagegen/storagegen/runtime"
)

// pyStats is the Python runtime's Stats as interop.py prints it.
type pyStats struct {
	Ready    int64 `json:"ready"`
	InFlight int64 `json:"in_flight"`
	Paused   bool  `json:"paused"`
}

// TestInteropPause: a pause is shared across languages, on an unsharded
// and a sharded queue. Go pauses: a Python receiver sees Paused in its
// stats and waits without taking anything, and gets every item, on its
// first delivery, once Go resumes. Python pauses: Go sees Paused, a Go
// Receive gets nothing, and a Go receiver that waits gets the item once
// Python resumes.
func TestInteropPause(t *testing.T) {
	py := Python(t)
	dir := t.TempDir()
	Assemble(t, dir, "pyrt", "teststore.py")
	CopyTest(t, dir, "interop.py")
	srv := startServer(t)
	ds, err := runtime.New(runtime.Options{Addr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		decl *runtime.QueueDecl
	}{{"jobs", jobsDecl}, {"sjobs", sjobsDecl}} {
		t.Run(tc.name, func(t *testing.T) {
			const tenant = "pause{x}%"
			q := runtime.NewReliableQueue[msg](ds, tc.decl, tenant)

			// Go pauses; Python waits, then receives after Go resumes.
			if err := q.Pause(ctx); err != nil {
				t.Fatal(err)
			}
			const n = 6
			for i := range n {
				if err := q.Push(ctx, msg{"i": float64(i)}); err != nil {
					t.Fatal(err)
				}
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(cctx, py, "interop.py", srv.Addr, "wait", tc.name, tenant, "6")
			cmd.Dir, cmd.Env = dir, os.Environ()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			var first struct {
				Waiting *pyStats `json:"waiting"`
			}
			if !lines.Scan() || json.Unmarshal(lines.Bytes(), &first) != nil || first.Waiting == nil {
				_ = cmd.Wait()
				t.Fatalf("interop.py wait: first line %q; stderr:\n%s", lines.Text(), stderr.String())
			}
			if w := *first.Waiting; !w.Paused || w.Ready != n || w.InFlight != 0 {
				t.Errorf("Python's stats while its receive waited on a paused queue = %+v; want paused, %d ready, none in flight", w, n)
			}
			if st, err := q.Stats(ctx); err != nil || st.Ready != n || st.InFlight != 0 || !st.Paused {
				t.Errorf("Go's Stats while Python waited = %+v, %v", st, err)
			}
			if err := q.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			var r interopReply
			if !lines.Scan() || json.Unmarshal(lines.Bytes(), &r) != nil {
				_ = cmd.Wait()
				t.Fatalf("interop.py wait: last line %q; stderr:\n%s", lines.Text(), stderr.String())
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("interop.py wait: %v; stderr:\n%s", err, stderr.String())
			}
			var seen []int
			for _, g := range r.Got {
				seen = append(seen, int(g.Value["i"].(float64)))
				if g.Attempt != 1 {
					t.Errorf("Python got item %v with attempt %d; want 1", g.Value, g.Attempt)
				}
			}
			slices.Sort(seen)
			if !slices.Equal(seen, []int{0, 1, 2, 3, 4, 5}) {
				t.Errorf("Python received %v after Go resumed; want 0…5 once each", seen)
			}

			// Python pauses; Go waits, then receives after Python resumes.
			var pr struct {
				Stats pyStats `json:"stats"`
			}
			if err := json.Unmarshal(runPython(t, py, dir, nil, time.Minute, "interop.py", srv.Addr, "pause", tc.name, tenant), &pr); err != nil || !pr.Stats.Paused {
				t.Fatalf("Python's pause: %+v, %v", pr, err)
			}
			if st, err := q.Stats(ctx); err != nil || !st.Paused {
				t.Fatalf("Go's Stats after Python paused = %+v, %v", st, err)
			}
			if err := q.Push(ctx, msg{"i": float64(99)}); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := q.Receive(ctx, 300*time.Millisecond); ok || err != nil {
				t.Fatalf("Go's Receive of a queue Python paused = %v, %v; want nothing", ok, err)
			}
			type got struct {
				d   *runtime.Delivery[msg]
				ok  bool
				err error
			}
			goRecv := make(chan got, 1)
			go func() {
				d, ok, err := q.Receive(ctx, time.Minute)
				goRecv <- got{d, ok, err}
			}()
			if err := json.Unmarshal(runPython(t, py, dir, nil, time.Minute, "interop.py", srv.Addr, "resume", tc.name, tenant), &pr); err != nil || pr.Stats.Paused {
				t.Fatalf("Python's resume: %+v, %v", pr, err)
			}
			g := <-goRecv
			if g.err != nil || !g.ok || g.d.Value["i"] != float64(99) || g.d.Attempt != 1 {
				t.Fatalf("Go's Receive after Python resumed = %+v, %v, %v", g.d, g.ok, g.err)
			}
			if err := g.d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
