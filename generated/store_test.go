package generated_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/generated"
	"github.com/storagegen/storagegen/internal/redistest"
	"github.com/storagegen/storagegen/runtime"
)

var redisURL string

func TestMain(m *testing.M) { redistest.Main(m, &redisURL, generated.Prefix) }

func newStore(t testing.TB) *generated.Store {
	ds, err := runtime.New(runtime.Options{URL: redisURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return generated.New(ds)
}

// TestTypedAPI walks through the API of the schema, as node code uses it.
func TestTypedAPI(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	// node_edge and node_output have the plain layout: the keys of the
	// engine's Python QueueStore and CacheStore.
	q := s.Queues.NodeEdge("node_5", "node_8")
	if got, want := q.Key(), "flow:queue:queue_node_5_node_8"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if got, want := s.Caches.NodeOutput("node_1").Key(), "flow:cache:node_1_output"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 1, time.UTC)
	m1 := generated.NodeMessage{RunID: "r1", SourceID: "node_5", Port: "out", Data: map[string]any{"n": 1.0}, SentAt: at}
	m2, m3 := m1, m1
	m2.RunID, m3.RunID = "r2", "r3"
	if err := q.Push(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if err := q.PushMany(ctx, m2, m3); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx); err != nil || n != 3 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	msg, ok, err := q.Pop(ctx, 5*time.Second)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if diff := cmp.Diff(m1, msg); diff != "" {
		t.Errorf("Pop (-want +got):\n%s", diff)
	}
	msgs, err := q.PopMany(ctx, 100, time.Second)
	if err != nil || len(msgs) != 2 || msgs[0].RunID != "r2" || msgs[1].RunID != "r3" {
		t.Fatalf("PopMany = %v, %v", msgs, err)
	}
	if _, ok, err := q.Pop(ctx, 10*time.Millisecond); ok || err != nil {
		t.Errorf("Pop on empty = %v, %v", ok, err)
	}

	// The Python system's naming collides, and so does the plain layout,
	// by design: (a_b, c) and (a, b_c) are one queue. storagegen lint
	// says so (the schema ignores it for node_edge: TestPlainAmbiguity).
	if a, b := s.Queues.NodeEdge("a_b", "c").Key(), s.Queues.NodeEdge("a", "b_c").Key(); a != b || a != "flow:queue:queue_a_b_c" {
		t.Errorf("NodeEdge(a_b, c) is %q and NodeEdge(a, b_c) %q; the plain layout gives both flow:queue:queue_a_b_c", a, b)
	}
	jobs := s.Queues.Jobs() // at-least-once
	if got := jobs.Key(); got != "flow:queue:{jobs}" {
		t.Errorf("Jobs key = %q", got)
	}
	job := generated.JobRequest{FlowID: "flow_1", Inputs: map[string]any{"x": 1.0}, Priority: 2}
	id := fmt.Sprint("typed-api-", time.Now().UnixNano())
	if err := jobs.PushID(ctx, id, job); err != nil {
		t.Fatal(err)
	}
	d, ok, err := jobs.Receive(ctx, time.Second)
	if err != nil || !ok || d.ID != id || d.Attempt != 1 {
		t.Fatalf("Receive = %+v, %v, %v", d, ok, err)
	}
	if diff := cmp.Diff(job, d.Value); diff != "" {
		t.Errorf("Receive (-want +got):\n%s", diff)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}

	c := s.Caches.NodeOutput("node_1")
	out := generated.NodeOutput{NodeID: "node_1", Status: "failed", Error: "boom", DurationMs: 1.5}
	if err := c.Set(ctx, out); err != nil {
		t.Fatal(err)
	}
	if left, err := c.TTL(ctx); err != nil || left <= 59*time.Minute || left > time.Hour {
		t.Errorf("TTL after Set = %v, %v; want the schema's 1h", left, err)
	}
	if err := c.SetTTL(ctx, out, time.Minute); err != nil {
		t.Fatal(err)
	}
	if left, _ := c.TTL(ctx); left > time.Minute {
		t.Errorf("TTL after SetTTL(1m) = %v", left)
	}
	got, ok, err := c.Get(ctx)
	if err != nil || !ok || !cmp.Equal(out, got) {
		t.Errorf("Get = %+v, %v, %v", got, ok, err)
	}
	if exists, err := c.Exists(ctx); !exists || err != nil {
		t.Errorf("Exists = %v, %v", exists, err)
	}
	if deleted, err := c.Delete(ctx); !deleted || err != nil {
		t.Errorf("Delete = %v, %v", deleted, err)
	}
	if _, ok, err := c.Get(ctx); ok || err != nil {
		t.Errorf("Get after Delete = %v, %v; want a miss", ok, err)
	}

	a := s.Caches.AttemptLog("run-1", 3)
	if got := a.Key(); got != "flow:cache:attempt:run-1:3" {
		t.Errorf("AttemptLog key = %q", got)
	}
	if err := a.Set(ctx, out); err != nil {
		t.Fatal(err)
	}
	if left, _ := a.TTL(ctx); left <= 23*time.Hour {
		t.Errorf("AttemptLog TTL = %v; want 24h", left)
	}
	a.Delete(ctx)

	set := s.Caches.Settings("flow-1")
	if err := set.Set(ctx, generated.FlowSettings{MaxParallel: 4}); err != nil {
		t.Fatal(err)
	}
	if left, _ := set.TTL(ctx); left != runtime.NoExpiry {
		t.Errorf("Settings TTL = %v; want NoExpiry (ttl: none)", left)
	}
	set.Delete(ctx)
}

// The typed API: a QueueWriter pushes, a QueueReader pops, and node outputs
// are cached for step-by-step runs.
func Example() {
	ctx := context.Background()
	ds, err := runtime.New(runtime.Options{URL: os.Getenv("REDIS_URL")})
	if err != nil {
		panic(err)
	}
	defer ds.Close()
	s := generated.New(ds)

	edge := s.Queues.NodeEdge("node_5", "node_8")
	edge.PushMany(ctx,
		generated.NodeMessage{RunID: "r1", Port: "out", Data: map[string]any{"row": 1}},
		generated.NodeMessage{RunID: "r1", Port: "out", Data: map[string]any{"row": 2}},
	)
	for {
		msg, ok, err := edge.Pop(ctx, 100*time.Millisecond)
		if err != nil || !ok {
			break
		}
		fmt.Println("popped row", msg.Data["row"])
	}

	out := s.Caches.NodeOutput("node_8")
	out.Set(ctx, generated.NodeOutput{NodeID: "node_8", Status: "succeeded"})
	got, ok, _ := out.Get(ctx)
	fmt.Println(out.Key(), got.Status, ok)
	_, ok, _ = s.Caches.NodeOutput("node_9").Get(ctx)
	fmt.Println("node_9 cached:", ok)
	out.Delete(ctx)
	// Output:
	// popped row 1
	// popped row 2
	// flow:cache:node_8_output succeeded true
	// node_9 cached: false
}

// TestPlainAmbiguity: without its lint_ignore, node_edge gets the
// plain-ambiguous warning, with two tuples that give one key; node_output
// (one placeholder, then literal text) gets none.
func TestPlainAmbiguity(t *testing.T) {
	src, err := os.ReadFile("../schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := gen.Load("schema.yaml", src, gen.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range m.Queues {
		q.Review.LintIgnore = nil
	}
	for _, c := range m.Caches {
		c.Review.LintIgnore = nil
	}
	var got []string
	for _, f := range gen.Lint(m, nil) {
		if f.Rule == "plain-ambiguous" {
			got = append(got, f.Subject+": "+f.Message)
		}
	}
	want := []string{`queue "node_edge": in the plain layout, ("a", "_a") and ("a_", "a") are one key, flow:queue:queue_a__a: values are inserted as they are, so a value holding the pattern's literal text (or, for a queue, ending in :dead) reaches another tuple's key; the Python storage system has the same ambiguity`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plain-ambiguous findings (-want +got):\n%s", diff)
	}
}
