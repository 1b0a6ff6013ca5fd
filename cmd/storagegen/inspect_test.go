package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

const inspectSchema = `version: 1
package: store
prefix: "ci:"
types:
  Job:
    fields:
      id: string
queues:
  jobs:
    key: "jobs:{tenant}"
    payload: Job
    delivery: at-least-once
    max_deliveries: 1
  edges:
    key: "e_{a}"
    layout: plain
    payload: Job
caches:
  out:
    key: "out:{node}"
    payload: Job
    ttl: 1h
`

// inspectRun runs the inspect command with stdin (a terminal when tty).
func inspectRun(t *testing.T, stdin string, tty bool, args ...string) (int, string, string) {
	t.Helper()
	old := newInspectIO
	t.Cleanup(func() { newInspectIO = old })
	newInspectIO = func() (inspectIO, func()) {
		return inspectIO{ctx: context.Background(), stdin: strings.NewReader(stdin), stdinTTY: tty, getenv: func(string) string { return "" }}, func() {}
	}
	var out, errw strings.Builder
	code := run(append([]string{"inspect"}, args...), &out, &errw)
	return code, out.String(), errw.String()
}

// inspectFixture starts a redis-server, writes inspectSchema to a
// temporary schema file, and returns the server, the file's path and an
// admin client of the server, each closed when t ends.
func inspectFixture(t *testing.T) (*redistest.Server, string, *redis.Client) {
	t.Helper()
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	schema := filepath.Join(t.TempDir(), "schema.yaml")
	if err := os.WriteFile(schema, []byte(inspectSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { cl.Close() })
	return srv, schema, cl
}

func TestInspectCommand(t *testing.T) {
	srv, schema, cl := inspectFixture(t)
	url := srv.URL(0)
	ctx := context.Background()
	// jobs t1: 2 ready, and a dead letter; edges: an item that is not a
	// Job; out: 1 entry; a stray.
	for _, c := range [][]any{
		{"LPUSH", "ci:queue:{jobs:t1}", "a", "b"},
		{"HSET", "ci:queue:{jobs:t1}:items", "a", `{"id":"a"}`, "b", `{"id":"b"}`, "d", `{"id":"SECRET-d"}`},
		{"ZADD", "ci:queue:{jobs:t1}:dead", "1", "d"},
		{"LPUSH", "ci:queue:e_x", `{"id":5,"secret":"SECRET-e"}`},
		{"SET", "ci:cache:out:n1", `{"id":"n1"}`, "PX", "3600000"},
		{"SET", "ci:stray", "1"},
	} {
		if err := cl.Do(ctx, c...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"-schema", schema, "-redis", url}

	code, out, errs := inspectRun(t, "", false, append(base, "-json")...)
	if code != 0 {
		t.Fatalf("overview: %d %s", code, errs)
	}
	var ov struct {
		Decls []struct {
			Decl      struct{ Name string }
			Instances int
			Queue     *struct{ Ready, Dead, InFlight int64 }
			Cache     *struct{ Entries, NoExpiry int64 }
		}
		Unknown struct{ Count int }
	}
	if err := json.Unmarshal([]byte(out), &ov); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]string{"jobs": "1 2 1 0", "edges": "1 1 0 0", "out": "1 1 0"}
	for _, d := range ov.Decls {
		var got string
		if d.Queue != nil {
			got = strings.Join([]string{itoa(d.Instances), itoa(int(d.Queue.Ready)), itoa(int(d.Queue.Dead)), itoa(int(d.Queue.InFlight))}, " ")
		} else {
			got = strings.Join([]string{itoa(d.Instances), itoa(int(d.Cache.Entries)), itoa(int(d.Cache.NoExpiry))}, " ")
		}
		if got != want[d.Decl.Name] {
			t.Errorf("%s: %s, want %s", d.Decl.Name, got, want[d.Decl.Name])
		}
	}
	if ov.Unknown.Count != 1 {
		t.Errorf("unknown: %d, want 1", ov.Unknown.Count)
	}

	code, out, _ = inspectRun(t, "", false, append(base, "-unknown")...)
	if code != 0 || !strings.Contains(out, "ci:stray") || !strings.Contains(out, "jobs") {
		t.Errorf("table: %d\n%s", code, out)
	}
	// Peeks show payloads; errors and the table never do.
	code, out, _ = inspectRun(t, "", false, append(base, "queue", "edges", "a=x", "-peek", "3")...)
	if code != 0 || !strings.Contains(out, "SECRET-e") || !strings.Contains(out, "field id (/id)") {
		t.Errorf("peek: %d\n%s", code, out)
	}
	code, out, _ = inspectRun(t, "", false, append(base, "dead", "jobs", "-json")...)
	if code != 0 || !strings.Contains(out, "SECRET-d") {
		t.Errorf("dead: %d\n%s", code, out)
	}

	// Writes: refused without a terminal, asked on one.
	code, _, errs = inspectRun(t, "", false, append(base, "dead", "jobs", "tenant=t1", "-requeue", "1")...)
	if code != 1 || !strings.Contains(errs, "add -yes") {
		t.Errorf("requeue without a terminal: %d %s", code, errs)
	}
	code, _, errs = inspectRun(t, "n\n", true, append(base, "pause", "jobs", "tenant=t1")...)
	if code != 1 || !strings.Contains(errs, "nothing done") || cl.Exists(ctx, "ci:queue:{jobs:t1}:paused").Val() != 0 {
		t.Errorf("pause answered n: %d %s", code, errs)
	}
	code, out, errs = inspectRun(t, "y\n", true, append(base, "pause", "jobs", "tenant=t1")...)
	if code != 0 || !strings.Contains(errs, "Go ahead?") || !strings.Contains(out, "paused") || cl.Exists(ctx, "ci:queue:{jobs:t1}:paused").Val() != 1 {
		t.Errorf("pause answered y: %d %s %s", code, out, errs)
	}
	code, out, _ = inspectRun(t, "", false, append(base, "dead", "jobs", "-requeue", "5", "-yes")...)
	if code != 0 || !strings.Contains(out, "requeued 1") || cl.ZCard(ctx, "ci:queue:{jobs:t1}:dead").Val() != 0 || cl.LLen(ctx, "ci:queue:{jobs:t1}").Val() != 3 {
		t.Errorf("requeue -yes: %d %s", code, out)
	}
	code, out, _ = inspectRun(t, "", false, append(base, "cache", "out", "node=n1", "-get")...)
	if code != 0 || !strings.Contains(out, `{"id":"n1"}`) {
		t.Errorf("cache -get: %d %s", code, out)
	}

	// Bad words and flags exit 2; a bad schema 1 with its position.
	for _, args := range [][]string{
		{"queue"}, {"frob", "x"}, {"queue", "nope"}, {"queue", "jobs", "zone=1"}, {"-peek", "1"},
		{"dead", "jobs", "-requeue", "1", "-purge"}, {"pause", "edges", "a=x", "-yes"}, {"-nope"},
	} {
		if code, _, errs := inspectRun(t, "", false, append(base, args...)...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errs)
		}
	}
	bad := filepath.Join(filepath.Dir(schema), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nqueues:\n  q: {key: \"a{\", payload: X}\n"), 0o644)
	if code, _, errs := inspectRun(t, "", false, "-schema", bad, "-redis", url); code != 1 || !strings.Contains(errs, "bad.yaml:3:") {
		t.Errorf("bad schema: %d %s", code, errs)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
