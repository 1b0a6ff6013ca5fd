package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/internal/dashboard"
	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/internal/redistest"
	"github.com/storagegen/storagegen/runtime"
)

// testSchema: an at-least-once queue, a plain at-most-once queue, a
// sharded one, a tagged cache with a TTL and a plain one without.
const testSchema = `version: 1
package: store
prefix: "db:"
types:
  Msg:
    fields:
      id: string
      n: int
      note: {type: string, optional: true}
queues:
  jobs:
    key: "jobs:{tenant}"
    payload: Msg
    delivery: at-least-once
    lease: 30s
    max_deliveries: 2
  edges:
    key: "e_{a}"
    layout: plain
    payload: Msg
  spread:
    key: "spread"
    payload: Msg
    shards: 2
caches:
  out:
    key: "out:{node}"
    payload: Msg
    ttl: 1h
  kv:
    key: "kv_{k}"
    layout: plain
    payload: Msg
    ttl: none
`

type Msg struct {
	ID   string `json:"id"`
	N    int    `json:"n"`
	Note string `json:"note,omitzero"`
}

// Hostile payloads: the pages must show them as text.
const (
	hostileID   = `<script>alert("id")</script>`
	hostileNote = `</pre><img src=x onerror=alert(1)>`
	hostileRaw  = "<b>raw</b>\xff"
	// secretMark is in every hostile payload and must never reach a log.
	secretMark = "alert"
)

// fixture is a seeded Redis and an inspector of testSchema over it.
type fixture struct {
	ds     *runtime.DataStore
	in     *inspect.Inspector
	admin  func(fn func(cl redis.UniversalClient) error)
	jobsT1 runtime.ReliableQueue[Msg]
	jobsT2 runtime.ReliableQueue[Msg]
	// expiredID is the in-flight item of jobs t1 whose lease ran out.
	expiredID string
}

// The seeded state, which the tests check the pages against:
//
//	jobs tenant=t1: ready 3 (j3, j4, j5; j5 hostile), in flight 2 (one
//	  with an expired lease), delayed 1; tenant=t2: dead 1 (dead1,
//	  attempts 2, last error "handler: boom <i>")
//	edges a=x: ready 2, dead 1 (not JSON, hostile)
//	spread: ready 3 over 2 shards
//	out: n1 (TTL 1h), n2 (no TTL); kv: k=a b (no TTL)
func seed(t *testing.T, url string) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ds, err := runtime.New(runtime.Options{URL: url, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	m, err := gen.Load("schema.yaml", []byte(testSchema), gen.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qd, cd := map[string]*runtime.QueueDecl{}, map[string]*runtime.CacheDecl{}
	for _, s := range m.Queues {
		d := &runtime.QueueDecl{Name: s.Name, Prefix: m.Prefix, Key: s.Key, Layout: s.Layout, Shards: s.Shards}
		if s.Reliable != nil {
			d.Lease, d.MaxDeliveries, d.DedupeWindow = s.Reliable.Lease, s.Reliable.MaxDeliveries, s.Reliable.DedupeWindow
		}
		qd[s.Name] = d
	}
	for _, s := range m.Caches {
		ttl := s.TTL
		if s.NoExpiry {
			ttl = runtime.NoExpiry
		}
		cd[s.Name] = &runtime.CacheDecl{Name: s.Name, Prefix: m.Prefix, Key: s.Key, Layout: s.Layout, TTL: ttl}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{ds: ds}
	f.admin = func(fn func(cl redis.UniversalClient) error) { t.Helper(); must(ds.Do("seed", "", fn)) }

	f.jobsT1 = runtime.NewReliableQueue[Msg](ds, qd["jobs"], "t1")
	for i := range 6 {
		msg := Msg{ID: fmt.Sprint("j", i), N: i}
		if i == 5 {
			msg = Msg{ID: hostileID, N: 5, Note: hostileNote}
		}
		must(f.jobsT1.PushID(ctx, fmt.Sprint("j", i), msg))
	}
	got, err := f.jobsT1.ReceiveMany(ctx, 3, 0)
	must(err)
	if len(got) != 3 {
		t.Fatalf("received %d, want 3", len(got))
	}
	must(got[2].Nack(ctx, time.Hour))
	f.expiredID = got[1].ID
	f.admin(func(cl redis.UniversalClient) error {
		return cl.ZAdd(ctx, f.jobsT1.Key()+":leases", redis.Z{Score: float64(time.Now().Add(-time.Minute).UnixMilli()), Member: got[1].ID}).Err()
	})
	f.jobsT2 = runtime.NewReliableQueue[Msg](ds, qd["jobs"], "t2")
	must(f.jobsT2.PushID(ctx, "dead1", Msg{ID: "d", N: 1, Note: hostileNote}))
	for range 2 {
		d, ok, err := f.jobsT2.Receive(ctx, 0)
		if err != nil || !ok {
			t.Fatalf("receive: %v %v", ok, err)
		}
		must(d.Nack(ctx, 0))
	}
	f.admin(func(cl redis.UniversalClient) error {
		return cl.HSet(ctx, f.jobsT2.Key()+":errors", "dead1", "handler: boom <i>").Err()
	})

	edges := runtime.NewQueue[Msg](ds, qd["edges"], "x")
	must(edges.PushMany(ctx, Msg{ID: "e1", N: 1}, Msg{ID: "e2", N: 2}))
	f.admin(func(cl redis.UniversalClient) error { return cl.LPush(ctx, "db:queue:e_x:dead", hostileRaw).Err() })
	spread := runtime.NewQueue[Msg](ds, qd["spread"])
	for i := range 3 {
		must(spread.Push(ctx, Msg{ID: fmt.Sprint("s", i), N: i}))
	}

	must(runtime.NewCache[Msg](ds, cd["out"], "n1").Set(ctx, Msg{ID: "n1"}))
	must(runtime.NewCache[Msg](ds, cd["out"], "n2").Set(ctx, Msg{ID: "n2"}))
	f.admin(func(cl redis.UniversalClient) error { return cl.Persist(ctx, "db:cache:out:n2").Err() })
	must(runtime.NewCache[Msg](ds, cd["kv"], "a b").Set(ctx, Msg{ID: "kv", Note: hostileNote}))
	f.in = inspect.New(m, ds, inspect.Options{})
	return f
}

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newServer returns a dashboard of f with its log in a buffer.
func newServer(t *testing.T, f *fixture, cfg dashboard.Config) (*dashboard.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Inspector = f.in
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// checkLogs fails when a payload reached the log.
func checkLogs(t *testing.T, logs *syncBuffer) {
	t.Helper()
	l := logs.String()
	for _, bad := range []string{secretMark, "onerror", "boom", "<b>", "n1", "kv"} {
		if strings.Contains(l, bad) {
			t.Errorf("the log holds %q:\n%s", bad, l)
		}
	}
	if !strings.Contains(l, "route=") {
		t.Errorf("the log has no request line:\n%s", l)
	}
}

func startRedis(t *testing.T) string {
	t.Helper()
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.URL(0)
}
