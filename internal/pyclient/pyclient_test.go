package pyclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/redistest"
	"github.com/storagegen/storagegen/runtime"
)

// startServer starts a redis-server for one test on a free loopback port.
func startServer(t *testing.T) *redistest.Server {
	t.Helper()
	srv, err := redistest.Start("--save", "", "--appendonly", "no")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// runPython runs py with args in dir and returns its standard output; a
// failure shows both outputs.
func runPython(t *testing.T, py, dir string, env []string, timeout time.Duration, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", py, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// TestPythonRuntime runs gen/python/tests/test_runtime.py (unittest)
// against a real redis-server, with the golden corpus of keys that Go's
// keyspace builds (testdata/keys.json, checked by TestKeyCorpus), and
// mypy --strict on the assembled package and the tests.
func TestPythonRuntime(t *testing.T) {
	py := Python(t)
	dir := t.TempDir()
	Assemble(t, dir, "pyrt", "teststore.py")
	CopyTest(t, dir, "test_runtime.py")
	corpus, err := filepath.Abs(keyCorpusFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t)
	out := runPython(t, py, dir, []string{"STORAGEGEN_TEST_REDIS=" + srv.Addr, "STORAGEGEN_KEY_CORPUS=" + corpus},
		5*time.Minute, "-m", "unittest", "-v", "test_runtime")
	t.Logf("%s", out)
	runPython(t, py, dir, nil, 5*time.Minute, "-m", "mypy", "--strict", "--cache-dir", filepath.Join(dir, ".mypy_cache"),
		"pyrt", "test_runtime.py")
}

// The declarations of gen/python/tests/teststore.py, in Go.
var (
	jobsDecl = &runtime.QueueDecl{Name: "jobs", Prefix: "pyt:", Key: runtime.MustKeyPattern("jobs:{tenant}"),
		Lease: 30 * time.Second, MaxDeliveries: 3}
	sjobsDecl = &runtime.QueueDecl{Name: "sjobs", Prefix: "pyt:", Key: runtime.MustKeyPattern("sjobs:{tenant}"), Shards: 3}
	edgeDecl  = &runtime.QueueDecl{Name: "edge", Prefix: "pyt:", Key: runtime.MustKeyPattern("queue_{source_id}_{target_id}")}
)

type msg = map[string]any

type interopReply struct {
	Key       string   `json:"key"`
	ShardKeys []string `json:"shard_keys"`
	Values    []msg    `json:"values"`
	Got       []struct {
		Value   msg    `json:"value"`
		Attempt int    `json:"attempt"`
		ID      string `json:"id"`
	} `json:"got"`
}

// interop runs gen/python/tests/interop.py with args and decodes its reply.
func interop(t *testing.T, py, dir, addr string, args ...string) interopReply {
	t.Helper()
	out := runPython(t, py, dir, nil, 3*time.Minute, append([]string{"interop.py", addr}, args...)...)
	var r interopReply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("interop.py %v: %v in %q", args, err, out)
	}
	return r
}

// TestInteropReliable shares at-least-once queues between Go and Python:
// Go pushes and Python receives and acks, Python pushes and Go receives,
// delivery counts carry over between a Go nack and a Python receive, a
// PushID from either side dedupes the other's, and both build the same
// keys for the same tuple (with separators and braces to escape), sharded
// or not.
func TestInteropReliable(t *testing.T) {
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
	const tenant = "node_5{x}%é"
	q := runtime.NewReliableQueue[msg](ds, jobsDecl, tenant)

	// Go pushes, Python receives: one item is nacked once by Go first.
	const n = 40
	vs := make([]msg, n)
	for i := range vs {
		vs[i] = msg{"i": float64(i), "from": "go"}
	}
	if err := q.PushMany(ctx, vs...); err != nil {
		t.Fatal(err)
	}
	d, ok, err := q.Receive(ctx, time.Second)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := d.Nack(ctx, 0); err != nil {
		t.Fatal(err)
	}
	r := interop(t, py, dir, srv.Addr, "receive", "jobs", tenant, fmt.Sprint(n))
	if r.Key != q.Key() {
		t.Fatalf("Python key %q, Go key %q", r.Key, q.Key())
	}
	seen := map[float64]int{}
	for _, g := range r.Got {
		want := 1
		if g.ID == d.ID {
			want = 2
		}
		if g.Attempt != want || g.Value["from"] != "go" {
			t.Errorf("Python received %+v; want attempt %d of a Go item", g, want)
		}
		seen[g.Value["i"].(float64)]++
	}
	if len(seen) != n || len(r.Got) != n {
		t.Fatalf("Python received %d items (%d distinct) of %d", len(r.Got), len(seen), n)
	}
	if st, err := q.Stats(ctx); err != nil || st != (runtime.Stats{}) {
		t.Fatalf("after Python acked everything: %+v, %v", st, err)
	}

	// Python pushes (with IDs), Go receives; Go's PushID of an ID Python
	// pushed is deduplicated.
	interop(t, py, dir, srv.Addr, "push", "jobs", tenant, fmt.Sprint(n), "ids")
	if err := q.PushID(ctx, "id-3", msg{"from": "go", "dup": true}); err != nil {
		t.Fatal(err)
	}
	got := receiveAll(t, q, n)
	for i, v := range got {
		if v["from"] != "py" || v["i"] != float64(i) {
			t.Fatalf("Go received %v at %d; want Python's item %d in order", v, i, i)
		}
	}

	// A Go nack carries its count to Python, and Python's nack back to Go.
	if err := q.Push(ctx, msg{"nack": float64(2)}); err != nil {
		t.Fatal(err)
	}
	r = interop(t, py, dir, srv.Addr, "receive", "jobs", tenant, "2")
	if len(r.Got) != 2 || r.Got[0].Attempt != 1 || r.Got[1].Attempt != 2 || r.Got[0].ID != r.Got[1].ID {
		t.Fatalf("Python deliveries %+v; want attempts 1 (nacked) and 2 (acked) of one ID", r.Got)
	}

	// Sharded: Python pushes by ID to the shard Go's ShardOf names, Go receives.
	sq := runtime.NewReliableQueue[msg](ds, sjobsDecl, tenant)
	r = interop(t, py, dir, srv.Addr, "push", "sjobs", tenant, "30", "ids")
	if !slices.Equal(r.ShardKeys, sq.ShardKeys()) {
		t.Fatalf("Python shard keys %q, Go's %q", r.ShardKeys, sq.ShardKeys())
	}
	got = receiveAll(t, sq, 30)
	ids := map[float64]bool{}
	for _, v := range got {
		ids[v["i"].(float64)] = true
	}
	if len(ids) != 30 {
		t.Fatalf("Go received %d distinct items of Python's 30 on the sharded queue", len(ids))
	}
	// Go pushes to the shards, Python receives.
	for i := range 20 {
		if err := sq.PushID(ctx, fmt.Sprintf("g-%d", i), msg{"i": float64(i), "from": "go"}); err != nil {
			t.Fatal(err)
		}
	}
	r = interop(t, py, dir, srv.Addr, "receive", "sjobs", tenant, "20")
	if len(r.Got) != 20 {
		t.Fatalf("Python received %d of Go's 20 on the sharded queue", len(r.Got))
	}
	if st, err := sq.Stats(ctx); err != nil || st != (runtime.Stats{}) {
		t.Fatalf("sharded queue after both sides acked: %+v, %v", st, err)
	}
}

// receiveAll receives and acks n items of q with Go, in order.
func receiveAll(t *testing.T, q runtime.ReliableQueue[msg], n int) []msg {
	t.Helper()
	ctx := context.Background()
	var out []msg
	for range 10*n + 100 {
		if len(out) >= n {
			break
		}
		ds, err := q.ReceiveMany(ctx, 10, 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Attempt != 1 {
				t.Errorf("Go received %q with attempt %d", d.ID, d.Attempt)
			}
			out = append(out, d.Value)
			if err := d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(out) != n {
		t.Fatalf("Go received %d of %d items", len(out), n)
	}
	if d, ok, err := q.Receive(ctx, 0); ok || err != nil {
		t.Fatalf("one more item %+v, %v", d, err)
	}
	return out
}

// TestInteropQueue: an at-most-once queue that Go pushes and Python pops,
// on the same tagged key.
func TestInteropQueue(t *testing.T) {
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
	q := runtime.NewQueue[msg](ds, edgeDecl, "node_5", "node_8")
	for i := range 10 {
		if err := q.Push(context.Background(), msg{"i": float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r := interop(t, py, dir, srv.Addr, "pop", "10")
	if r.Key != q.Key() || r.Key != "pyt:queue:{queue_node%5F5_node%5F8}" {
		t.Fatalf("Python key %q, Go key %q", r.Key, q.Key())
	}
	for i, v := range r.Values {
		if v["i"] != float64(i) {
			t.Fatalf("Python popped %v at %d", v, i)
		}
	}
	if len(r.Values) != 10 {
		t.Fatalf("Python popped %d of 10", len(r.Values))
	}
	if n, err := q.Len(context.Background()); err != nil || n != 0 {
		t.Fatalf("Len after Python popped everything = %d, %v", n, err)
	}
}
