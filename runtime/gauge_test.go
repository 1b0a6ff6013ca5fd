package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/redistest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// gaugeSeries reads storagegen.queue.items from reader: its values by
// "kind/name/state", and the attributes of each ("k=v ...", sorted).
func gaugeSeries(t *testing.T, reader *sdkmetric.ManualReader) (vals map[string]int64, attrs map[string]string) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(bg, &rm); err != nil {
		t.Fatal(err)
	}
	vals, attrs = map[string]int64{}, map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "storagegen.queue.items" {
				continue
			}
			if m.Unit != "{item}" {
				t.Errorf("unit %q", m.Unit)
			}
			g, ok := m.Data.(metricdata.Gauge[int64])
			if !ok {
				t.Fatalf("storagegen.queue.items: data of type %T", m.Data)
			}
			for _, p := range g.DataPoints {
				var kv []string
				for _, a := range p.Attributes.ToSlice() {
					kv = append(kv, string(a.Key)+"="+a.Value.Emit())
				}
				sort.Strings(kv)
				id := ""
				for _, k := range []attribute.Key{"storagegen.kind", "storagegen.name", "storagegen.state"} {
					v, _ := p.Attributes.Value(k)
					id += "/" + v.Emit()
				}
				id = id[1:]
				if _, dup := vals[id]; dup {
					t.Fatalf("two series for %s", id)
				}
				vals[id], attrs[id] = p.Value, strings.Join(kv, " ")
			}
		}
	}
	return vals, attrs
}

// resample makes every declaration of ds due for a sample at the next
// collection, as if its interval had passed.
func resample(ds *DataStore) {
	g := &ds.tel.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range *ds.tel.decls.Load() {
		if d.watch != nil {
			d.watch.last = time.Time{}
		}
	}
}

func mustReceive[T any](t *testing.T, q ReliableQueue[T], n int) []*Delivery[T] {
	t.Helper()
	ds, err := q.ReceiveMany(bg, n, 0)
	if err != nil || len(ds) != n {
		t.Fatalf("ReceiveMany(%d) = %d deliveries, %v", n, len(ds), err)
	}
	return ds
}

// TestDeadLetterAndReclaimMetrics: items that become dead letters (a
// nack past max deliveries by hand and by Consume, a reclaim past max
// deliveries, a foreign entry) are counted under dead_letter; Reclaim
// calls are timed once each (a sharded queue's too), and the items
// reclaimed by Reclaim and by Receive's own reclaims are counted under
// reclaim.
func TestDeadLetterAndReclaimMetrics(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	raw := rawClient(t)

	// A nack by hand on the last delivery.
	nq := testReliable[int](ds, "nacked", time.Minute, 2)
	if err := nq.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	for _, d := range mustReceive(t, nq, 2) {
		if err := d.Nack(bg, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range mustReceive(t, nq, 2) {
		if err := d.Nack(bg, 0); err != nil { // the second: dead letters
			t.Fatal(err)
		}
	}

	// Consume's nacks on the last delivery.
	cq := testReliable[int](ds, "consumed", time.Minute, 1)
	if err := cq.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := 0
	err := cq.Consume(ctx, func(context.Context, *Delivery[int]) error {
		mu.Lock()
		defer mu.Unlock()
		if seen++; seen == 3 {
			cancel()
		}
		return errors.New("fails")
	}, ConsumeOptions{Concurrency: 1, BlockTimeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n, err := cq.Dead().Len(bg); n != 3 || err != nil {
		t.Fatalf("Consume left %d dead letters, %v; want 3", n, err)
	}

	// Reclaim: expired leases put back (3), then made dead letters (3).
	rq := testReliable[int](ds, "reclaimed", time.Minute, 2)
	if err := rq.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		mustReceive(t, rq, 3)
		expireLeases(t, raw, rq.Key())
		if n, err := rq.Reclaim(bg); n != 3 || err != nil {
			t.Fatalf("round %d: Reclaim = %d, %v; want 3", round, n, err)
		}
	}
	// Receive's own reclaim (due at once: its last one is forgotten).
	if err := rq.Push(bg, 4); err != nil {
		t.Fatal(err)
	}
	mustReceive(t, rq, 1)
	expireLeases(t, raw, rq.Key())
	ds.reclaimed.Delete(rq.Key())
	if _, ok, err := rq.Receive(bg, 0); !ok || err != nil {
		t.Fatalf("Receive after its reclaim = %v, %v", ok, err)
	}

	// A sharded queue's Reclaim is one call.
	sq := NewReliableQueue[int](ds, &QueueDecl{Name: "sharded", Prefix: ds.prefix, Key: MustKeyPattern("sharded"), Shards: 4})
	if _, err := sq.Reclaim(bg); err != nil {
		t.Fatal(err)
	}

	// A foreign entry in the ready list.
	fq := testReliable[int](ds, "foreign", time.Minute, 0)
	if err := raw.LPush(bg, fq.Key(), "not an ID").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fq.Receive(bg, 0); !errors.Is(err, ErrDecode) {
		t.Fatalf("Receive of a foreign entry: %v; want ErrDecode", err)
	}

	got := items(t, reader)
	want := map[string]int64{
		"reliable_queue/nacked/dead_letter/ok":    2,
		"reliable_queue/consumed/dead_letter/ok":  3,
		"reliable_queue/reclaimed/dead_letter/ok": 3,
		"reliable_queue/reclaimed/reclaim/ok":     7, // 3 put back, 3 dead, 1 by Receive
		"reliable_queue/foreign/dead_letter/ok":   1,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("items[%s] = %d; want %d", k, got[k], w)
		}
	}
	for k, v := range got {
		if strings.Contains(k, "/dead_letter/") || strings.Contains(k, "/reclaim/") {
			if _, ok := want[k]; !ok {
				t.Errorf("items[%s] = %d; want no such series", k, v)
			}
		}
	}
	c := calls(t, reader)
	if c["reliable_queue/reclaimed/reclaim/ok"] != 2 || c["reliable_queue/sharded/reclaim/ok"] != 1 {
		t.Errorf("Reclaim calls: reclaimed %d (want 2), sharded %d (want 1)", c["reliable_queue/reclaimed/reclaim/ok"], c["reliable_queue/sharded/reclaim/ok"])
	}
	for k := range c {
		if strings.Contains(k, "/dead_letter/") {
			t.Errorf("calls[%s]: dead letters are items, not calls", k)
		}
	}
	all := collect(t, reader, "storagegen.items")
	wantAttrs := map[string]string{
		"reliable_queue/nacked/dead_letter/ok": "messaging.destination.name=nacked messaging.operation.name=dead_letter messaging.operation.type=settle messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=nacked storagegen.operation=dead_letter",
		"reliable_queue/reclaimed/reclaim/ok":  "messaging.destination.name=reclaimed messaging.operation.name=reclaim messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=reclaimed storagegen.operation=reclaim",
	}
	for k, w := range wantAttrs {
		if all[k].attrs != w {
			t.Errorf("attributes of %s:\n got %s\nwant %s", k, all[k].attrs, w)
		}
	}
}

// seedReliable leaves the at-least-once queue q with ready, in flight
// (ready+1 pushed, 1 received), one delayed and one dead item, q having
// MaxDeliveries 2.
func seedReliable(t *testing.T, q ReliableQueue[int], ready int) {
	t.Helper()
	if err := q.Push(bg, 0); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second nack makes it a dead letter
		if err := mustReceive(t, q, 1)[0].Nack(bg, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if err := mustReceive(t, q, 1)[0].Nack(bg, time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := range ready + 1 {
		if err := q.Push(bg, i); err != nil {
			t.Fatal(err)
		}
	}
	mustReceive(t, q, 1)
}

// TestQueueItemsGauge: the gauge reports what Stats reads, summed over the
// instances of a declaration that the DataStore opened, with every state
// of an at-least-once queue and ready and dead of an at-most-once one.
func TestQueueItemsGauge(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	decl := &QueueDecl{Name: "edge", Prefix: ds.prefix, Key: MustKeyPattern("edge:{a:int}"), Lease: time.Minute, MaxDeliveries: 2}
	e1, e2 := NewReliableQueue[int](ds, decl, 1), NewReliableQueue[int](ds, decl, 2)
	seedReliable(t, e1, 2)
	seedReliable(t, e2, 5)
	var want [numStates]int64
	for _, q := range []ReliableQueue[int]{e1, e2} {
		s, err := q.Stats(bg)
		if err != nil {
			t.Fatal(err)
		}
		want[stateReady] += s.Ready
		want[stateInFlight] += s.InFlight
		want[stateDelayed] += s.Delayed
		want[stateDead] += s.Dead
	}
	if want != [numStates]int64{7, 2, 2, 2} {
		t.Fatalf("seeded %v; want ready 7, in flight 2, delayed 2, dead 2", want)
	}

	pdecl := &QueueDecl{Name: "plain", Prefix: ds.prefix, Key: MustKeyPattern("plain:{a:int}")}
	p1, p2 := NewQueue[int](ds, pdecl, 1), NewQueue[int](ds, pdecl, 2)
	if err := p1.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := p2.PushMany(bg, 4); err != nil {
		t.Fatal(err)
	}
	if err := rawClient(t).LPush(bg, p2.Key(), "not json").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.PopMany(bg, 2, 0); !errors.Is(err, ErrDecode) {
		t.Fatalf("PopMany with an undecodable item: %v", err)
	}
	var pwant QueueStats
	for _, q := range []Queue[int]{p1, p2} {
		s, err := q.Stats(bg)
		if err != nil {
			t.Fatal(err)
		}
		pwant.Ready += s.Ready
		pwant.Dead += s.Dead
	}
	if pwant != (QueueStats{Ready: 3, Dead: 1}) {
		t.Fatalf("seeded %+v", pwant)
	}

	got, attrs := gaugeSeries(t, reader)
	wantVals := map[string]int64{
		"reliable_queue/edge/ready": want[stateReady], "reliable_queue/edge/in_flight": want[stateInFlight],
		"reliable_queue/edge/delayed": want[stateDelayed], "reliable_queue/edge/dead": want[stateDead],
		"queue/plain/ready": pwant.Ready, "queue/plain/dead": pwant.Dead,
	}
	equalMaps(t, "storagegen.queue.items", got, wantVals)
	wantAttrs := map[string]string{
		"reliable_queue/edge/in_flight": "messaging.destination.name=edge messaging.system=storagegen storagegen.kind=reliable_queue storagegen.name=edge storagegen.state=in_flight",
		"queue/plain/dead":              "messaging.destination.name=plain messaging.system=storagegen storagegen.kind=queue storagegen.name=plain storagegen.state=dead",
	}
	for k, w := range wantAttrs {
		if attrs[k] != w {
			t.Errorf("attributes of %s:\n got %s\nwant %s", k, attrs[k], w)
		}
	}
}

// TestQueueItemsSampling: two collections within StatsInterval read the
// server once: the second reports the first's values. Once the interval
// has passed (resample), the next collection reads again.
func TestQueueItemsSampling(t *testing.T) {
	ds, reader := meteredStore(t, Options{StatsInterval: time.Hour})
	decl := &QueueDecl{Name: "jobs", Prefix: ds.prefix, Key: MustKeyPattern("jobs:{a:int}")}
	for i := range 3 {
		if err := NewQueue[int](ds, decl, i).Push(bg, i); err != nil {
			t.Fatal(err)
		}
	}
	rq := testReliable[int](ds, "work", time.Minute, 0)
	if err := rq.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := rq.Stats(bg); err != nil { // the server has the stats script: no reload counted
		t.Fatal(err)
	}
	got, _ := gaugeSeries(t, reader)
	reads := ds.tel.reads.Load()
	if got["queue/jobs/ready"] != 3 || got["reliable_queue/work/ready"] != 1 || reads != 3*2+1 {
		t.Fatalf("first collection: %v after %d reads; want 3 and 1 after 7 (two LLENs per list, one script per queue)", got, reads)
	}
	if err := NewQueue[int](ds, decl, 0).Push(bg, 9); err != nil {
		t.Fatal(err)
	}
	got, _ = gaugeSeries(t, reader)
	if r := ds.tel.reads.Load(); got["queue/jobs/ready"] != 3 || r != reads {
		t.Errorf("a collection within the interval: ready %d after %d more reads; want 3 (the last sample) after none", got["queue/jobs/ready"], r-reads)
	}
	resample(ds)
	got, _ = gaugeSeries(t, reader)
	if r := ds.tel.reads.Load(); got["queue/jobs/ready"] != 4 || r != 2*reads {
		t.Errorf("a collection after the interval: ready %d after %d more reads; want 4 after %d", got["queue/jobs/ready"], r-reads, reads)
	}
}

// TestQueueItemsSilentServer: when the server stops answering, a
// collection returns within its bound (min(StatsInterval, 2s), here 1s;
// go-redis alone would wait out its 60s read timeout) with the last
// values read; a collection meanwhile does not start another read.
func TestQueueItemsSilentServer(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.Addr
	u.RawQuery = "read_timeout=60s"
	ds, reader := meteredStore(t, Options{URL: u.String(), StatsInterval: time.Second})
	q := testReliable[int](ds, "slow", time.Minute, 0)
	if err := q.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if got, _ := gaugeSeries(t, reader); got["reliable_queue/slow/ready"] != 3 {
		t.Fatalf("before the cut: %v", got)
	}
	reads := ds.tel.reads.Load()
	proxy.Blackhole(true)
	resample(ds)
	start := time.Now()
	got, _ := gaugeSeries(t, reader)
	took := time.Since(start)
	if got["reliable_queue/slow/ready"] != 3 {
		t.Errorf("during the cut: %v; want the last sample's 3 ready", got)
	}
	if took > 20*time.Second {
		t.Errorf("a collection during the cut took %v; want about 1s", took)
	}
	resample(ds)
	if got, _ := gaugeSeries(t, reader); got["reliable_queue/slow/ready"] != 3 || ds.tel.reads.Load() != reads+1 {
		t.Errorf("a second collection during the cut: %v after %d reads; want 3 after 1 (the first still waits)", got, ds.tel.reads.Load()-reads)
	}
	t.Logf("a collection during the cut returned after %v", took.Round(time.Millisecond))
	// End the read still waiting (a retry reaches the server), and the
	// DataStore before the proxy.
	proxy.Blackhole(false)
	proxy.Cut()
	waitFor5s(t, "the sample to end", func() bool {
		ds.tel.gauges.mu.Lock()
		defer ds.tel.gauges.mu.Unlock()
		return ds.tel.running == nil
	})
	ds.Close()
}

// TestQueueItemsClosed: a closed DataStore reports no queue.
func TestQueueItemsClosed(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	if err := testReliable[int](ds, "gone", time.Minute, 0).Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := gaugeSeries(t, reader); got["reliable_queue/gone/ready"] != 1 {
		t.Fatalf("before Close: %v", got)
	}
	ds.Close()
	if got, _ := gaugeSeries(t, reader); len(got) != 0 {
		t.Errorf("after Close: %v; want no series", got)
	}
}

// TestQueueItemsCardinality: 2,000 instances of one declaration make one
// series per state; the gauge sums the first maxWatched of them (the
// documented undercount), and instances that read empty forgetAfter
// times in a row are forgotten, making room for others.
func TestQueueItemsCardinality(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	decl := &QueueDecl{Name: "node_edge", Prefix: ds.prefix, Key: MustKeyPattern("node_edge:{a:int}")}
	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 16 {
				errs <- NewQueue[int](ds, decl, i).Push(bg, i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := gaugeSeries(t, reader)
	equalMaps(t, "storagegen.queue.items", got, map[string]int64{"queue/node_edge/ready": maxWatched, "queue/node_edge/dead": 0})
	w := ds.tel.decl(kindQueue, "node_edge").watch
	if m := len(*w.inst.Load()); m != maxWatched {
		t.Fatalf("%d instances noted; want %d", m, maxWatched)
	}

	// Empty them all: after forgetAfter samples at 0 they are forgotten.
	if _, err := redistest.DeleteKeys(bg, rawClient(t), ds.prefix+"queue:{node_edge:*"); err != nil {
		t.Fatal(err)
	}
	for range forgetAfter {
		resample(ds)
		gaugeSeries(t, reader)
	}
	if m := len(*w.inst.Load()); m != 0 {
		t.Fatalf("%d instances still noted after %d empty samples; want 0", m, forgetAfter)
	}
	if err := NewQueue[int](ds, decl, n+1).Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	resample(ds)
	if got, _ := gaugeSeries(t, reader); got["queue/node_edge/ready"] != 1 {
		t.Errorf("a new instance after the others were forgotten: %v; want ready 1", got)
	}
}

// TestQueueItemsNoteNoAllocs: opening a queue handle (what generated
// accessors do on every access) allocates nothing more with a
// MeterProvider than without, once its instance is noted.
func TestQueueItemsNoteNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not exact under -race")
	}
	measure := func(ds *DataStore) (q, r float64) {
		decl := &QueueDecl{Name: "a", Prefix: ds.prefix, Key: MustKeyPattern("a:{n:int}")}
		rdecl := &QueueDecl{Name: "r", Prefix: ds.prefix, Key: MustKeyPattern("r:{n:int}")}
		q = testing.AllocsPerRun(200, func() { NewQueue[int](ds, decl, 7) })
		r = testing.AllocsPerRun(200, func() { NewReliableQueue[int](ds, rdecl, 7) })
		return
	}
	plain := newStore(t, Options{})
	q, r := measure(plain)
	metered, _ := meteredStore(t, Options{Prefix: plain.prefix + "m:"})
	mq, mr := measure(metered)
	t.Logf("NewQueue %v allocs (%v with a MeterProvider), NewReliableQueue %v (%v)", q, mq, r, mr)
	if mq > q || mr > r {
		t.Errorf("with a MeterProvider NewQueue allocates %v (%v without), NewReliableQueue %v (%v without)", mq, q, mr, r)
	}
	if len(*metered.tel.decl(kindQueue, "a").watch.inst.Load()) != 1 {
		t.Error("the instance was not noted")
	}
}

// TestStatsIntervalRefused: an interval below 100ms (or negative) is an
// error of New.
func TestStatsIntervalRefused(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, time.Millisecond, 99 * time.Millisecond} {
		if _, err := New(Options{URL: redisURL, StatsInterval: d}); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "StatsInterval") {
			t.Errorf("StatsInterval %v: %v; want ErrInvalidArgument naming StatsInterval", d, err)
		}
	}
	ds, err := New(Options{URL: redisURL, StatsInterval: minStatsInterval})
	if err != nil {
		t.Fatal(err)
	}
	ds.Close()
}

// BenchmarkQueueItems measures what the gauge costs: opening a noted
// instance's handle (what generated accessors do on every access) from 64
// goroutines, without and with a MeterProvider, and one collection that
// reads 1,000 at-least-once instances (pipelined):
//
//	go test -run XXX -bench QueueItems -benchmem ./runtime
func BenchmarkQueueItems(b *testing.B) {
	for _, metered := range []bool{false, true} {
		name := "open/none"
		if metered {
			name = "open/meter"
		}
		b.Run(name, func(b *testing.B) {
			var ds *DataStore
			if metered {
				ds, _ = meteredStore(b, Options{})
			} else {
				ds = newStore(b, Options{})
			}
			decl := &QueueDecl{Name: "q", Prefix: ds.prefix, Key: MustKeyPattern("q:{n:int}"), Lease: time.Minute}
			for i := range 16 {
				NewReliableQueue[int](ds, decl, i)
			}
			b.SetParallelism(max(1, 64/goruntime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					NewReliableQueue[int](ds, decl, i%16)
					i++
				}
			})
		})
	}
	b.Run("collect/1000", func(b *testing.B) {
		ds, reader := meteredStore(b, Options{})
		decl := &QueueDecl{Name: "q", Prefix: ds.prefix, Key: MustKeyPattern("q:{n:int}"), Lease: time.Minute}
		for i := range maxWatched {
			if err := NewReliableQueue[int](ds, decl, i).Push(bg, i); err != nil {
				b.Fatal(err)
			}
		}
		var rm metricdata.ResourceMetrics
		b.ResetTimer()
		for b.Loop() {
			resample(ds)
			if err := reader.Collect(bg, &rm); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestQueueItemsScriptFlushed: a server that lost its scripts (SCRIPT
// FLUSH, a restart) is read all the same: the stats script is loaded again
// and the pipeline sent again.
func TestQueueItemsScriptFlushed(t *testing.T) {
	redistest.SingleOnly(t, "flushes the scripts of the one server")
	ds, reader := meteredStore(t, Options{})
	decl := &QueueDecl{Name: "flushed", Prefix: ds.prefix, Key: MustKeyPattern("flushed:{a:int}")}
	for i := range 3 {
		if err := NewReliableQueue[int](ds, decl, i).PushMany(bg, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := rawClient(t).ScriptFlush(bg).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := gaugeSeries(t, reader); got["reliable_queue/flushed/ready"] != 6 {
		t.Errorf("after SCRIPT FLUSH: %v; want ready 6", got)
	}
}
