package inspect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
	"github.com/storagegen/storagegen/runtime"
)

// testSchema has every kind the inspector tells apart: tagged and plain,
// at-most-once and at-least-once, sharded and not, caches with a TTL and
// without.
const testSchema = `version: 1
package: store
prefix: "it:"
types:
  Msg:
    fields:
      id: string
      n: int
      at: {type: time.Time, optional: true}
  KV:
    fields:
      m: "map[string]int"
queues:
  plainq:
    key: "pq_{a}_{b}"
    layout: plain
    payload: Msg
    lint_ignore: [plain-ambiguous]
  spread:
    key: "spread:{n:int}"
    payload: Msg
    shards: 3
  jobs:
    key: "jobs:{tenant}"
    payload: Msg
    delivery: at-least-once
    lease: 30s
    max_deliveries: 2
  work:
    key: work
    payload: Msg
    delivery: at-least-once
    shards: 2
caches:
  out:
    key: "out:{node}"
    payload: Msg
    ttl: 1h
  kv:
    key: "kv:{k}"
    layout: plain
    payload: KV
    ttl: none
`

type KV struct {
	M map[string]int `json:"m"`
}

type Msg struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

func load(t *testing.T) *gen.Model {
	t.Helper()
	m, err := gen.Load("schema.yaml", []byte(testSchema), gen.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decls(m *gen.Model) (q map[string]*runtime.QueueDecl, c map[string]*runtime.CacheDecl) {
	q, c = map[string]*runtime.QueueDecl{}, map[string]*runtime.CacheDecl{}
	for _, s := range m.Queues {
		d := &runtime.QueueDecl{Name: s.Name, Prefix: m.Prefix, Key: s.Key, Layout: s.Layout, Shards: s.Shards}
		if s.Reliable != nil {
			d.Lease, d.MaxDeliveries, d.DedupeWindow = s.Reliable.Lease, s.Reliable.MaxDeliveries, s.Reliable.DedupeWindow
		}
		q[s.Name] = d
	}
	for _, s := range m.Caches {
		ttl := s.TTL
		if s.NoExpiry {
			ttl = runtime.NoExpiry
		}
		c[s.Name] = &runtime.CacheDecl{Name: s.Name, Prefix: m.Prefix, Key: s.Key, Layout: s.Layout, TTL: ttl}
	}
	return q, c
}

func TestInspectSingle(t *testing.T)   { testInspect(t, redistest.TopologySingle) }
func TestInspectCluster(t *testing.T)  { testInspect(t, redistest.TopologyCluster) }
func TestInspectSentinel(t *testing.T) { testInspect(t, redistest.TopologySentinel) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testInspect seeds known state on tp and checks every number the
// inspector reports against it, then its writes.
func testInspect(t *testing.T, tp redistest.Topology) {
	if testing.Short() && tp != redistest.TopologySingle {
		t.Skip("-short: single server only")
	}
	url, _, stop, err := redistest.ForTopology(tp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ds, err := runtime.New(runtime.Options{URL: url, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	defer ds.Close()
	admin := func(fn func(cl redis.UniversalClient) error) {
		t.Helper()
		must(t, ds.Do("seed", "", fn))
	}
	m := load(t)
	qd, cd := decls(m)

	// plainq: two items at pq_x_y_z (ambiguous: (x, y_z) or (x_y, z)), one
	// at a key with glob characters, one dead letter that is not JSON.
	pq := runtime.NewQueue[Msg](ds, qd["plainq"], "x", "y_z")
	must(t, pq.PushMany(ctx, Msg{"p1", 1}, Msg{"p2", 2}))
	must(t, runtime.NewQueue[Msg](ds, qd["plainq"], "g*", "[h]?").Push(ctx, Msg{"p3", 3}))
	admin(func(cl redis.UniversalClient) error {
		return cl.LPush(ctx, "it:queue:pq_x_y_z:dead", "\xffnot json").Err()
	})

	// spread (3 shards): 7 items over the shards of n=1, one item of n=2,
	// a dead letter on shard 1 of n=1 that decodes as JSON but not as Msg.
	sp := runtime.NewQueue[Msg](ds, qd["spread"], 1)
	for i := range 7 {
		must(t, sp.Push(ctx, Msg{fmt.Sprint("s", i), i}))
	}
	must(t, runtime.NewQueue[Msg](ds, qd["spread"], 2).Push(ctx, Msg{"t", 0}))
	admin(func(cl redis.UniversalClient) error {
		return cl.LPush(ctx, keyspace.DeadKey(sp.ShardKeys()[1]), `{"id":"ok","n":7}`, `{"id":"x","n":"seven"}`).Err()
	})

	// jobs t1: ready 3, in flight 2 (one with an expired lease), delayed 1.
	j1 := runtime.NewReliableQueue[Msg](ds, qd["jobs"], "t1")
	for i := range 6 {
		must(t, j1.PushID(ctx, fmt.Sprint("j", i), Msg{fmt.Sprint("j", i), i}))
	}
	ds1, err := j1.ReceiveMany(ctx, 3, 0)
	must(t, err)
	if len(ds1) != 3 {
		t.Fatalf("received %d, want 3", len(ds1))
	}
	must(t, ds1[2].Nack(ctx, time.Hour))
	admin(func(cl redis.UniversalClient) error {
		return cl.ZAdd(ctx, j1.Key()+":leases", redis.Z{Score: float64(time.Now().Add(-time.Minute).UnixMilli()), Member: ds1[1].ID}).Err()
	})
	// jobs t2: one dead letter (two failed deliveries), whose payload is
	// then made one that does not decode.
	j2 := runtime.NewReliableQueue[Msg](ds, qd["jobs"], "t2")
	must(t, j2.PushID(ctx, "dead1", Msg{"d", 1}))
	for range 2 {
		d, ok, err := j2.Receive(ctx, 0)
		if err != nil || !ok {
			t.Fatalf("receive: %v %v", ok, err)
		}
		must(t, d.Nack(ctx, 0))
	}
	admin(func(cl redis.UniversalClient) error {
		return cl.HSet(ctx, j2.Key()+":items", "dead1", `{"id":"d","n":1.5}`).Err()
	})

	// work (2 shards): 4 items.
	w := runtime.NewReliableQueue[Msg](ds, qd["work"])
	for i := range 4 {
		must(t, w.Push(ctx, Msg{fmt.Sprint("w", i), i}))
	}

	// out: 3 entries, one made to have no TTL; kv (plain, ttl none): 2,
	// one key with a space and glob characters.
	for _, n := range []string{"n1", "n2", "n3"} {
		must(t, runtime.NewCache[Msg](ds, cd["out"], n).Set(ctx, Msg{n, 0}))
	}
	admin(func(cl redis.UniversalClient) error { return cl.Persist(ctx, "it:cache:out:n3").Err() })
	must(t, runtime.NewCache[KV](ds, cd["kv"], "a b").Set(ctx, KV{map[string]int{"a": 1}}))
	must(t, runtime.NewCache[KV](ds, cd["kv"], "x*[").Set(ctx, KV{map[string]int{"x": 2}}))

	// Hostile keys: strays with glob characters, a renamed declaration's
	// leftovers, a shard beyond work's 2, a receipt-like key of an
	// at-most-once queue, a key of a cache outside its pattern.
	unknown := []string{"it:stray*?[", "it:queue:{old_jobs}", "it:queue:{old_jobs}:leases", "it:queue:2:{work#2}",
		"it:queue:{spread:1}:rx:abc", "it:cache:out", "it:cache:out:", "it:queue:{jobs:t1}:bogus"}
	admin(func(cl redis.UniversalClient) error {
		for _, k := range unknown {
			if err := cl.Set(ctx, k, "x", 0).Err(); err != nil {
				return err
			}
		}
		return nil
	})

	in := inspect.New(m, ds, inspect.Options{ScanCount: 7})
	ov, err := in.Overview(ctx, 100)
	must(t, err)
	got := map[string]inspect.DeclSummary{}
	for _, s := range ov.Decls {
		got[s.Decl.Name] = s
	}
	qc := func(name string, inst int, want inspect.QueueCounts) {
		t.Helper()
		s := got[name]
		if s.Instances != inst || s.AtLeast {
			t.Errorf("%s: %d instances (at least: %v), want %d", name, s.Instances, s.AtLeast, inst)
		}
		g := *s.Queue
		if (g.OldestReady != nil) != (want.OldestReady != nil) {
			t.Errorf("%s: oldest ready %v, want one: %v", name, g.OldestReady, want.OldestReady != nil)
		}
		g.OldestReady, want.OldestReady = nil, nil
		if g != want {
			t.Errorf("%s: %+v, want %+v", name, g, want)
		}
	}
	some := new(inspect.Duration)
	qc("plainq", 2, inspect.QueueCounts{Ready: 3, Dead: 1})
	qc("spread", 2, inspect.QueueCounts{Ready: 8, Dead: 2})
	qc("jobs", 2, inspect.QueueCounts{Ready: 3, InFlight: 2, Expired: 1, Delayed: 1, Dead: 1, OldestReady: some})
	qc("work", 1, inspect.QueueCounts{Ready: 4, OldestReady: some})
	cc := func(name string, inst int, want inspect.CacheCounts) {
		t.Helper()
		s := got[name]
		if s.Instances != inst || s.AtLeast {
			t.Errorf("%s: %d instances (at least: %v), want %d", name, s.Instances, s.AtLeast, inst)
		}
		if s.Cache.MemoryBytes <= 0 {
			t.Errorf("%s: memory %d, want > 0", name, s.Cache.MemoryBytes)
		}
		g := *s.Cache
		g.MemoryBytes = 0
		if g != want {
			t.Errorf("%s: %+v, want %+v", name, g, want)
		}
	}
	cc("out", 3, inspect.CacheCounts{Entries: 3, NoExpiry: 1})
	cc("kv", 2, inspect.CacheCounts{Entries: 2, NoExpiry: 2})
	if ov.Unknown.Count != len(unknown) || ov.Unknown.AtLeast || strings.Join(ov.Unknown.Keys, " ") != strings.Join(sorted(unknown), " ") {
		t.Errorf("unknown keys %d %q, want %d %q", ov.Unknown.Count, ov.Unknown.Keys, len(unknown), sorted(unknown))
	}
	if _, err := json.Marshal(ov); err != nil {
		t.Errorf("overview does not marshal: %v", err)
	}

	// Instances, with arguments parsed back and filters.
	jobs, _ := in.Decl(inspect.KindQueue, "jobs")
	l, err := in.Instances(ctx, jobs, inspect.Filter{})
	must(t, err)
	if len(l.List) != 2 || l.List[0].Args[0].Value != "t1" || l.List[1].Args[0].Value != "t2" || l.List[0].Key != "it:queue:{jobs:t1}" {
		t.Errorf("jobs instances: %+v", l.List)
	}
	plainq, _ := in.Decl(inspect.KindQueue, "plainq")
	f, err := plainq.ParseFilter([]string{"a=g*"})
	must(t, err)
	l, err = in.Instances(ctx, plainq, f)
	must(t, err)
	if len(l.List) != 1 || l.List[0].Args[1].Value != "[h]?" || l.List[0].Ambiguous || l.List[0].Queue.Ready != 1 {
		t.Errorf("plainq a=g*: %+v", l.List)
	}
	f, _ = plainq.ParseFilter([]string{"a=x"})
	l, err = in.Instances(ctx, plainq, f)
	must(t, err)
	if len(l.List) != 1 || !l.List[0].Ambiguous || l.List[0].Queue.Ready != 2 || l.List[0].Queue.Dead != 1 {
		t.Errorf("plainq a=x: %+v", l.List)
	}

	// Peek: oldest first, checked against Msg.
	f, _ = jobs.ParseFilter([]string{"tenant=t1"})
	p, err := in.Peek(ctx, jobs, f, 10)
	must(t, err)
	var states []string
	for _, it := range p.List {
		states = append(states, it.State+":"+it.ID)
		if it.DecodeError != "" {
			t.Errorf("%s: %s", it.ID, it.DecodeError)
		}
	}
	if want := "ready:j3 ready:j4 ready:j5 in_flight:" + ds1[1].ID + " in_flight:" + ds1[0].ID; strings.Join(states, " ") != want {
		t.Errorf("peek jobs t1: %s, want %s", strings.Join(states, " "), want)
	}
	if p.List[3].LeaseLeft == nil || *p.List[3].LeaseLeft >= 0 || p.List[4].LeaseLeft == nil || *p.List[4].LeaseLeft <= 0 {
		t.Errorf("leases: %v %v", p.List[3].LeaseLeft, p.List[4].LeaseLeft)
	}
	spread, _ := in.Decl(inspect.KindQueue, "spread")
	f, _ = spread.ParseFilter([]string{"n=1"})
	dl, err := in.Dead(ctx, spread, f, 10)
	must(t, err)
	if len(dl.List) != 2 || dl.List[0].Shard != 1 || dl.List[0].DecodeError != "" || !strings.Contains(dl.List[1].DecodeError, "field n (/n)") || strings.Contains(dl.List[1].DecodeError, "seven") {
		t.Errorf("spread dead: %+v", dl.List)
	}
	f, _ = plainq.ParseFilter([]string{"a=x", "b=y_z"})
	dl, err = in.Dead(ctx, plainq, f, 10)
	must(t, err)
	if len(dl.List) != 1 || dl.List[0].Value != nil || string(dl.List[0].Raw) != "\xffnot json" || dl.List[0].DecodeError == "" || strings.Contains(dl.List[0].DecodeError, "not json") {
		t.Errorf("plainq dead: %+v", dl.List)
	}
	f, _ = jobs.ParseFilter([]string{"tenant=t2"})
	dl, err = in.Dead(ctx, jobs, f, 10)
	must(t, err)
	if len(dl.List) != 1 || dl.List[0].ID != "dead1" || dl.List[0].Attempts != 2 || !strings.Contains(dl.List[0].DecodeError, "field n (/n)") {
		t.Errorf("jobs dead: %+v", dl.List)
	}

	// Caches.
	out, _ := in.Decl(inspect.KindCache, "out")
	f, _ = out.ParseFilter([]string{"node=n1"})
	e, err := in.CacheGet(ctx, out, f)
	must(t, err)
	if e.Item == nil || e.Stats.TTL == nil || *e.Stats.TTL <= 0 || string(e.Item.Value) != `{"id":"n1","n":0}` {
		t.Errorf("out n1: %+v %+v", e.Stats, e.Item)
	}
	kv, _ := in.Decl(inspect.KindCache, "kv")
	f, _ = kv.ParseFilter([]string{"k=x*["})
	e, err = in.CacheGet(ctx, kv, f)
	must(t, err)
	if e.Item == nil || e.Stats.NoExpiry != 1 || e.Item.DecodeError != "" {
		t.Errorf("kv x*[: %+v %+v", e.Stats, e.Item)
	}

	// Writes.
	f, _ = jobs.ParseFilter([]string{"tenant=t1"})
	n, err := in.Reclaim(ctx, jobs, f)
	if err != nil || n != 1 {
		t.Errorf("reclaim: %d %v, want 1", n, err)
	}
	must(t, in.Pause(ctx, jobs, f))
	l, _ = in.Instances(ctx, jobs, f)
	if q := l.List[0].Queue; q.Paused != 1 || q.Ready != 4 || q.Expired != 0 || q.InFlight != 1 {
		t.Errorf("after reclaim and pause: %+v", q)
	}
	must(t, in.Resume(ctx, jobs, f))
	f2, _ := jobs.ParseFilter([]string{"tenant=t2"})
	if n, err := in.Requeue(ctx, jobs, f2, 5); err != nil || n != 1 {
		t.Errorf("requeue: %d %v", n, err)
	}
	f, _ = plainq.ParseFilter([]string{"a=x", "b=y_z"})
	if n, err := in.Requeue(ctx, plainq, f, 5); err != nil || n != 1 {
		t.Errorf("plain requeue: %d %v", n, err)
	}
	f, _ = spread.ParseFilter([]string{"n=1"})
	if n, err := in.Purge(ctx, spread, f); err != nil || n != 2 {
		t.Errorf("purge: %d %v", n, err)
	}
	ov, err = in.Overview(ctx, 0)
	must(t, err)
	for _, s := range ov.Decls {
		got[s.Decl.Name] = s
	}
	qc("plainq", 2, inspect.QueueCounts{Ready: 4})
	qc("spread", 2, inspect.QueueCounts{Ready: 8})
	qc("jobs", 2, inspect.QueueCounts{Ready: 5, InFlight: 1, Delayed: 1, OldestReady: some})
	if err := in.Pause(ctx, plainq, f); !errors.Is(err, inspect.ErrNotSupported) {
		t.Errorf("pause of an at-most-once queue: %v", err)
	}
	if _, err := in.Peek(ctx, jobs, inspect.Filter{}, 1); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Errorf("peek without the arguments: %v", err)
	}

	// Beyond the cap: 300 entries of out, collected 50 at most.
	admin(func(cl redis.UniversalClient) error {
		for i := range 300 {
			if err := cl.Set(ctx, fmt.Sprintf("it:cache:out:m%d", i), `{"id":"m","n":1}`, time.Hour).Err(); err != nil {
				return err
			}
		}
		return nil
	})
	capped := inspect.New(m, ds, inspect.Options{MaxInstances: 50})
	l, err = capped.Instances(ctx, out, inspect.Filter{})
	must(t, err)
	if len(l.List) != 50 || !l.AtLeast {
		t.Errorf("capped: %d instances, at least %v; want 50, true", len(l.List), l.AtLeast)
	}
	ov, err = capped.Overview(ctx, 0)
	must(t, err)
	for _, s := range ov.Decls {
		if s.Decl.Name == "out" && (s.Instances != 50 || !s.AtLeast || s.Cache.Entries != 50) {
			t.Errorf("capped overview: %+v", s)
		}
	}
	walk := inspect.New(m, ds, inspect.Options{MaxKeys: 10})
	if ov, err := walk.Overview(ctx, 0); err != nil || !ov.Unknown.AtLeast {
		t.Errorf("a walk cut at 10 keys: %v, %v", ov.Unknown, err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
