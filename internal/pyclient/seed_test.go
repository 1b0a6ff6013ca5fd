package pyclient

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/pyinterop"
	"github.com/storagegen/storagegen/runtime"
)

// TestSeedStylePython: the engine's Python storage system as it is (no
// storagegen: LPUSH <prefix>queue:<name> of json.dumps(dict), BRPOP,
// SET/SETEX <prefix>cache:<key>, GET; xlang.py seed-write and seed-read)
// beside the typed Go client of layout: plain declarations, both ways.
// A message whose time came from isoformat() of a naive datetime is a dead
// letter on the Go side, with an error that names the field and says it has
// no zone; the messages around it are delivered.
func TestSeedStylePython(t *testing.T) {
	py := Python(t)
	srv := startServer(t)
	_, s := newXlangStore(t, srv.Addr)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { raw.Close() })
	ctx := context.Background()
	testdata := filepath.Join(Root(), "internal", "pyclient", "testdata")

	// The Python system writes; the typed Go client reads.
	out := runPython(t, py, testdata, xlangEnv(), time.Minute, "xlang.py", srv.Addr, "seed-write", pyinterop.Prefix)
	var w struct {
		Queue  string `json:"queue"`
		Pushed int    `json:"pushed"`
	}
	if err := json.Unmarshal(out, &w); err != nil {
		t.Fatal(err)
	}
	q := s.Queues.Edge("node_5", "node_8{x}%*é")
	if q.Key() != w.Queue || w.Pushed != 3 {
		t.Fatalf("the Python system pushed %d to %q; the plain declaration's key is %q", w.Pushed, w.Queue, q.Key())
	}
	sent := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.FixedZone("", 2*3600))
	want1 := pyinterop.Envelope{RunID: "run-1", Row: 1, SentAt: sent, Data: map[string]any{"a": 1.0, "b": []any{true, nil}}, Note: "ok"}
	want3 := pyinterop.Envelope{RunID: "run-1", Row: math.MaxInt64, SentAt: sent.UTC(), Data: map[string]any{"big": 1e300},
		Counts: map[string]uint64{"u": math.MaxUint64}}
	got, ok, err := q.Pop(ctx, time.Second)
	if err != nil || !ok {
		t.Fatalf("Pop of the Python system's first message: %v, %v", ok, err)
	}
	if diff := cmp.Diff(want1, got, exact); diff != "" {
		t.Errorf("the first message (-want +got):\n%s", diff)
	}
	// The second has "sent_at": "2026-05-06T07:08:09.123456", no zone.
	_, _, err = q.Pop(ctx, time.Second)
	if !errors.Is(err, runtime.ErrDecode) || !strings.Contains(err.Error(), "field sent_at (/sent_at)") ||
		!strings.Contains(err.Error(), "no zone offset") || !strings.Contains(err.Error(), q.Key()+":dead") ||
		strings.Contains(err.Error(), "07:08:09") {
		t.Errorf("Pop of the naive time's message: %v; want ErrDecode naming sent_at, the missing zone and the dead-letter list, without the value", err)
	}
	if dead, err := raw.LRange(ctx, q.Key()+":dead", 0, -1).Result(); err != nil || len(dead) != 1 ||
		!strings.Contains(dead[0], `"row": 2, "sent_at": "2026-05-06T07:08:09.123456"`) {
		t.Errorf("dead letters %q, %v; want the naive message's bytes, as the Python system wrote them", dead, err)
	}
	got, ok, err = q.Pop(ctx, time.Second)
	if err != nil || !ok {
		t.Fatalf("Pop of the third message: %v, %v", ok, err)
	}
	if diff := cmp.Diff(want3, got, exact); diff != "" {
		t.Errorf("the third message (-want +got):\n%s", diff)
	}
	for id, want := range map[string]pyinterop.Envelope{"node_1": want1, "node_2": want3} {
		c := s.Caches.Output(id)
		got, ok, err := c.Get(ctx)
		if err != nil || !ok {
			t.Fatalf("Get %s: %v, %v", c.Key(), ok, err)
		}
		if diff := cmp.Diff(want, got, exact); diff != "" {
			t.Errorf("cache %s (-want +got):\n%s", c.Key(), diff)
		}
	}
	if ttl, err := s.Caches.Output("node_2").TTL(ctx); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL of the Python system's SETEX entry: %v, %v", ttl, err)
	}

	// The typed Go client writes; the Python system reads.
	gq := s.Queues.Edge("go_5", "go_8%{y}")
	vals := []pyinterop.Envelope{
		{RunID: "go", Row: 1<<53 + 1, SentAt: nanoInd, Data: map[string]any{"k": "v"}, Note: "n"},
		{RunID: "go", Row: -1, SentAt: nanoUTC},
	}
	if err := gq.PushMany(ctx, vals...); err != nil {
		t.Fatal(err)
	}
	if err := s.Caches.Output("go_1").Set(ctx, vals[0]); err != nil {
		t.Fatal(err)
	}
	out = runPython(t, py, testdata, xlangEnv(), time.Minute, "xlang.py", srv.Addr, "seed-read", pyinterop.Prefix, "2")
	var r struct {
		Got   []map[string]any `json:"got"`
		Cache map[string]any   `json:"cache"`
		Times []string         `json:"times"`
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.UseNumber() // the rows are ints beyond 2^53
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Got) != 2 || r.Cache == nil {
		t.Fatalf("the Python system read %d messages and cache %v from the plain keys", len(r.Got), r.Cache)
	}
	wantTimes := []string{"2026-03-04T05:06:07.123456+05:30", "2026-03-04T23:59:59.999999+00:00"}
	for i, m := range r.Got {
		if m["row"] != json.Number(map[int]string{0: "9007199254740993", 1: "-1"}[i]) || m["run_id"] != "go" {
			t.Errorf("message %d as the Python system reads it: %v", i, m)
		}
		if r.Times[i] != wantTimes[i] {
			t.Errorf("message %d: datetime.fromisoformat of Go's sent_at is %s, want %s", i, r.Times[i], wantTimes[i])
		}
	}
	if _, ok := r.Got[1]["note"]; ok {
		t.Errorf("Go wrote the empty optional note: %v", r.Got[1])
	}
	if r.Cache["row"] != json.Number("9007199254740993") || r.Cache["note"] != "n" {
		t.Errorf("the Python system's GET of Go's cache entry: %v", r.Cache)
	}
}
