package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// meteredStore returns a DataStore whose metrics go to the returned
// ManualReader.
func meteredStore(t testing.TB, opts Options) (*DataStore, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	opts.MeterProvider = mp
	return newStore(t, opts), reader
}

// series is one data point of a metric, by its attributes.
type series struct {
	attrs string // "k=v k=v", sorted by key
	count uint64 // a histogram's count
	sum   int64  // a counter's value, or an int histogram's sum
}

// collect reads the metric name from reader: its points, by the four
// attributes storagegen.kind/storagegen.name/storagegen.operation/outcome
// (or storagegen.batch), with every attribute in attrs.
func collect(t *testing.T, reader *sdkmetric.ManualReader, name string) map[string]series {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]series{}
	add := func(set attribute.Set, s series) {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.Emit())
		}
		sort.Strings(kv)
		s.attrs = strings.Join(kv, " ")
		id := ""
		for _, k := range []attribute.Key{"storagegen.kind", "storagegen.name", "storagegen.operation", "outcome", "storagegen.batch"} {
			if v, ok := set.Value(k); ok {
				id += "/" + v.Emit()
			}
		}
		id = id[1:]
		if _, dup := out[id]; dup {
			t.Fatalf("%s: two series for %s", name, id)
		}
		out[id] = s
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != instrumentationName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, series{count: p.Count})
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, series{count: p.Count, sum: p.Sum})
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, series{sum: p.Value})
				}
			default:
				t.Fatalf("%s: data of type %T", name, m.Data)
			}
		}
	}
	return out
}

// calls returns the number of calls each series of the duration
// histogram counts.
func calls(t *testing.T, reader *sdkmetric.ManualReader) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for id, s := range collect(t, reader, "storagegen.operation.duration") {
		m[id] = s.count
	}
	return m
}

func items(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for id, s := range collect(t, reader, "storagegen.items") {
		m[id] = s.sum
	}
	return m
}

func equalMaps[V comparable](t *testing.T, what string, got, want map[string]V) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s[%s] = %v; want %v", what, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s[%s] = %v; want no such series", what, k, g)
		}
	}
}

// TestTelemetryOperations: each call of the typed API records one
// duration with its declaration's kind and name, its operation and
// outcome, and the items it carried.
func TestTelemetryOperations(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	ctx := bg
	jobs := &QueueDecl{Name: "jobs", Prefix: ds.prefix, Key: MustKeyPattern("jobs:{n:int}")}
	q := NewQueue[int](ds, jobs, 1)
	for i := range 3 {
		if err := q.Push(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.PushMany(ctx, 3, 4); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.Pop(ctx, 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if vs, err := q.PopMany(ctx, 10, 0); len(vs) != 4 || err != nil {
		t.Fatal(vs, err)
	}
	if _, ok, err := q.Pop(ctx, 0); ok || err != nil {
		t.Fatal(ok, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := q.Push(cctx, 9); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}

	out := &CacheDecl{Name: "node_output", Prefix: ds.prefix, Key: MustKeyPattern("out:{id}"), TTL: time.Minute}
	c := NewCache[string](ds, out, "a")
	if _, ok, err := c.Get(ctx); ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := c.Set(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTTL(ctx, "w", time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx); v != "w" || !ok || err != nil {
		t.Fatal(v, ok, err)
	}
	if ok, err := c.Delete(ctx); !ok || err != nil {
		t.Fatal(ok, err)
	}

	rq := testReliable[int](ds, "tasks", time.Minute, 0)
	if err := rq.PushMany(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := rq.PushID(ctx, "x", 3); err != nil {
		t.Fatal(err)
	}
	ds1, err := rq.ReceiveMany(ctx, 2, 0)
	if len(ds1) != 2 || err != nil {
		t.Fatal(len(ds1), err)
	}
	if err := ds1[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ds1[0].Ack(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("second ack: %v", err)
	}
	if err := ds1[1].Nack(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	d, ok, err := rq.Receive(ctx, 0)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := rq.Receive(ctx, 0); ok || err != nil {
		t.Fatal(ok, err)
	}

	equalMaps(t, "calls", calls(t, reader), map[string]uint64{
		"queue/jobs/push/ok":                  4,
		"queue/jobs/push/canceled":            1,
		"queue/jobs/pop/ok":                   2,
		"queue/jobs/pop/empty":                1,
		"cache/node_output/get/miss":          1,
		"cache/node_output/get/hit":           1,
		"cache/node_output/set/ok":            2,
		"cache/node_output/delete/ok":         1,
		"reliable_queue/tasks/push/ok":        2,
		"reliable_queue/tasks/receive/ok":     2,
		"reliable_queue/tasks/receive/empty":  1,
		"reliable_queue/tasks/ack/ok":         2,
		"reliable_queue/tasks/ack/lease_lost": 1,
		"reliable_queue/tasks/nack/ok":        1,
	})
	equalMaps(t, "items", items(t, reader), map[string]int64{
		"queue/jobs/push/ok":                  5,
		"queue/jobs/pop/ok":                   5,
		"reliable_queue/tasks/push/ok":        3,
		"reliable_queue/tasks/receive/ok":     3,
		"reliable_queue/tasks/ack/ok":         2,
		"reliable_queue/tasks/ack/lease_lost": 1,
		"reliable_queue/tasks/nack/ok":        1,
	})

	// The attributes, all of them, of one queue and one cache series.
	all := collect(t, reader, "storagegen.operation.duration")
	if got, want := all["queue/jobs/push/ok"].attrs, "messaging.destination.name=jobs messaging.operation.name=push messaging.operation.type=send messaging.system=storagegen outcome=ok storagegen.kind=queue storagegen.name=jobs storagegen.operation=push"; got != want {
		t.Errorf("queue attributes:\n got %s\nwant %s", got, want)
	}
	if got, want := all["reliable_queue/tasks/ack/ok"].attrs, "messaging.destination.name=tasks messaging.operation.name=ack messaging.operation.type=settle messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=ack"; got != want {
		t.Errorf("reliable queue attributes:\n got %s\nwant %s", got, want)
	}
	if got, want := all["cache/node_output/get/hit"].attrs, "outcome=hit storagegen.kind=cache storagegen.name=node_output storagegen.operation=get"; got != want {
		t.Errorf("cache attributes:\n got %s\nwant %s", got, want)
	}
	// Every call went through a coalescer as a batch of one.
	batches := collect(t, reader, "storagegen.batch.size")
	for _, b := range []string{"push", "pop", "get", "set"} {
		if s := batches[b]; s.count == 0 || int64(s.count) != s.sum {
			t.Errorf("batch %s: %d batches of %d calls in all; want some, of one call each", b, s.count, s.sum)
		}
	}
}

// TestTelemetryConsume: the acks and nacks Consume makes are recorded per
// delivery, whatever batch the settler sent them in.
func TestTelemetryConsume(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	q := testReliable[int](ds, "work", time.Minute, 0)
	const n = 20
	vs := make([]int, n)
	for i := range vs {
		vs[i] = i
	}
	if err := q.PushMany(bg, vs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := 0
	err := q.Consume(ctx, func(_ context.Context, d *Delivery[int]) error {
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen == n {
			cancel()
		}
		if d.Value%4 == 0 {
			return errors.New("fails")
		}
		return nil
	}, ConsumeOptions{Concurrency: 8, BlockTimeout: 100 * time.Millisecond, RetryBackoff: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("handled %d of %d", seen, n)
	}
	got := items(t, reader)
	if got["reliable_queue/work/ack/ok"] != 15 || got["reliable_queue/work/nack/ok"] != 5 || got["reliable_queue/work/receive/ok"] != n {
		t.Errorf("items: %v", got)
	}
}

// TestTelemetryCardinality: 10,000 distinct arguments make one series
// per declaration, operation and outcome, on the coalesced path too.
func TestTelemetryCardinality(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	out := &CacheDecl{Name: "node_output", Prefix: ds.prefix, Key: MustKeyPattern("out:{id:int}"), TTL: time.Minute}
	edges := &QueueDecl{Name: "node_edge", Prefix: ds.prefix, Key: MustKeyPattern("edge:{a:int}")}
	const n, workers = 10_000, 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := NewCache[int](ds, out, i).Set(bg, i); err != nil {
					errs <- err
					return
				}
				if err := NewQueue[int](ds, edges, i%100).Push(bg, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	equalMaps(t, "calls", calls(t, reader), map[string]uint64{
		"cache/node_output/set/ok": n,
		"queue/node_edge/push/ok":  n,
	})
	var got []string
	for id := range collect(t, reader, "storagegen.batch.size") {
		got = append(got, id)
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[push set]" {
		t.Errorf("batch series: %v", got)
	}
}

// TestTelemetryNoAllocs: without providers, Push and Get allocate
// exactly what their uninstrumented bodies do; with a MeterProvider,
// recording adds no allocation either (the attribute sets are built once
// per declaration).
//
// It skips under -race (raceEnabled); scripts/test.sh runs it without.
func TestTelemetryNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not exact under -race (its sync.Pool drops items at random)")
	}
	measure := func(ds *DataStore) (push, get, pushBody, getBody float64) {
		q := NewQueue[int](ds, &QueueDecl{Name: "a", Prefix: ds.prefix, Key: MustKeyPattern("a")})
		c := NewCache[int](ds, &CacheDecl{Name: "c", Prefix: ds.prefix, Key: MustKeyPattern("c"), TTL: time.Minute})
		if err := c.Set(bg, 1); err != nil {
			t.Fatal(err)
		}
		run := func(f func() error) float64 {
			return testing.AllocsPerRun(200, func() {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			})
		}
		push = run(func() error { return q.Push(bg, 1) })
		pushBody = run(func() error { return q.pushMany(bg, []int{1}) })
		get = run(func() error { _, _, err := c.Get(bg); return err })
		getBody = run(func() error { _, _, err := c.get(bg); return err })
		return
	}
	plain := newStore(t, Options{})
	push, get, pushBody, getBody := measure(plain)
	t.Logf("no provider: Push %v allocs (body %v), Get %v (body %v)", push, pushBody, get, getBody)
	if push > pushBody || get > getBody {
		t.Errorf("without a provider, Push allocates %v (its body %v) and Get %v (its body %v)", push, pushBody, get, getBody)
	}
	metered, _ := meteredStore(t, Options{Prefix: plain.prefix + "m:"})
	mpush, mget, _, _ := measure(metered)
	t.Logf("with a MeterProvider: Push %v allocs, Get %v", mpush, mget)
	if mpush > push || mget > get {
		t.Errorf("with a MeterProvider, Push allocates %v (%v without) and Get %v (%v without)", mpush, push, mget, get)
	}
}

// BenchmarkTelemetry measures what a MeterProvider costs coalesced
// Push and Get calls from 64 goroutines (SetParallelism over GOMAXPROCS):
//
//	go test -run XXX -bench Telemetry -benchmem ./runtime
func BenchmarkTelemetry(b *testing.B) {
	for _, metered := range []bool{false, true} {
		name := "none"
		if metered {
			name = "MeterProvider"
		}
		b.Run(name, func(b *testing.B) {
			var ds *DataStore
			if metered {
				ds, _ = meteredStore(b, Options{})
			} else {
				ds = newStore(b, Options{})
			}
			q := NewQueue[int](ds, &QueueDecl{Name: "bench", Prefix: ds.prefix, Key: MustKeyPattern("bench")})
			c := NewCache[int](ds, &CacheDecl{Name: "bench", Prefix: ds.prefix, Key: MustKeyPattern("bench"), TTL: time.Minute})
			if err := c.Set(bg, 1); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(max(1, 64/goruntime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.Push(bg, 1); err != nil {
						b.Error(err)
						return
					}
					if _, _, err := c.Get(bg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestTelemetryAPIOnly: the runtime links OpenTelemetry's API packages
// only; the SDK and the exporters are for tests, the command and the
// examples, so that an application picks its own.
func TestTelemetryAPIOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "go.opentelemetry.io/otel/metric\n") {
		t.Fatalf("go list -deps printed an unlikely list:\n%s", out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(dep, "go.opentelemetry.io/otel/exporters") {
			t.Errorf("the runtime depends on %s", dep)
		}
	}
}
