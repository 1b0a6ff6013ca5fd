package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedStore returns a DataStore whose spans go to the returned recorder,
// and, with metered, whose metrics go to the returned reader.
func tracedStore(t *testing.T, opts Options, metered bool) (*DataStore, *tracetest.SpanRecorder, *sdkmetric.ManualReader) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	opts.TracerProvider = tp
	var reader *sdkmetric.ManualReader
	if metered {
		reader = sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { mp.Shutdown(context.Background()) })
		opts.MeterProvider = mp
	}
	return newStore(t, opts), rec, reader
}

// spanAttrs returns a span's attributes as "k=v k=v", sorted.
func spanAttrs(s sdktrace.ReadOnlySpan) string {
	var kv []string
	for _, a := range s.Attributes() {
		kv = append(kv, string(a.Key)+"="+a.Value.Emit())
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

// spanLine is a span as "name kind status attrs".
func spanLine(s sdktrace.ReadOnlySpan) string {
	st := s.Status()
	status := st.Code.String()
	if st.Description != "" {
		status += "(" + st.Description + ")"
	}
	return s.Name() + " " + s.SpanKind().String() + " " + status + " " + spanAttrs(s)
}

// TestTraceSpans: with a TracerProvider alone, every call of the typed
// API is one span with its name, kind, attributes and status; no
// attribute carries a key, an argument or a payload.
func TestTraceSpans(t *testing.T) {
	ds, rec, _ := tracedStore(t, Options{}, false)
	ctx := bg
	const secretArg, secretPayload = "arg-secret", "payload-secret"
	jobs := &QueueDecl{Name: "jobs", Prefix: ds.prefix, Key: MustKeyPattern("jobs:{n}")}
	q := NewQueue[string](ds, jobs, secretArg)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(q.Push(ctx, secretPayload))
	must(q.PushMany(ctx, secretPayload, secretPayload))
	if _, ok, err := q.Pop(ctx, 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if vs, err := q.PopMany(ctx, 10, 0); len(vs) != 2 || err != nil {
		t.Fatal(vs, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := q.Push(cctx, secretPayload); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}

	out := &CacheDecl{Name: "node_output", Prefix: ds.prefix, Key: MustKeyPattern("out:{id}"), TTL: time.Minute}
	c := NewCache[string](ds, out, secretArg)
	must(c.Set(ctx, secretPayload))
	must(c.SetTTL(ctx, secretPayload, time.Minute))
	if _, ok, err := c.Get(ctx); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	local := NewCache[string](ds, &CacheDecl{Name: "local_out", Prefix: ds.prefix, Key: MustKeyPattern("lo:{id}"), TTL: time.Minute, Local: 10}, secretArg)
	if _, ok, err := local.Get(ctx); ok || err != nil {
		t.Fatal(ok, err)
	}

	rq := NewReliableQueue[string](ds, &QueueDecl{Name: "tasks", Prefix: ds.prefix, Key: MustKeyPattern("tasks:{n}"), Lease: time.Minute}, secretArg)
	must(rq.PushID(ctx, "id-1", secretPayload))
	must(rq.PushMany(ctx, secretPayload, secretPayload))
	d, ok, err := rq.Receive(ctx, 0)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	must(d.Ack(ctx))
	if err := d.Ack(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatal(err)
	}
	many, err := rq.ReceiveMany(ctx, 5, 0)
	if len(many) != 2 || err != nil {
		t.Fatal(len(many), err)
	}
	must(many[0].Nack(ctx, time.Hour))

	want := []string{
		"push jobs producer Unset messaging.destination.name=jobs messaging.operation.name=push messaging.operation.type=send messaging.system=storagegen outcome=ok storagegen.kind=queue storagegen.name=jobs storagegen.operation=push",
		"push jobs producer Unset messaging.batch.message_count=2 messaging.destination.name=jobs messaging.operation.name=push messaging.operation.type=send messaging.system=storagegen outcome=ok storagegen.kind=queue storagegen.name=jobs storagegen.operation=push",
		"pop jobs consumer Unset messaging.destination.name=jobs messaging.operation.name=pop messaging.operation.type=receive messaging.system=storagegen outcome=ok storagegen.kind=queue storagegen.name=jobs storagegen.operation=pop",
		"pop jobs consumer Unset messaging.batch.message_count=2 messaging.destination.name=jobs messaging.operation.name=pop messaging.operation.type=receive messaging.system=storagegen outcome=ok storagegen.kind=queue storagegen.name=jobs storagegen.operation=pop",
		"push jobs producer Error(canceled) messaging.destination.name=jobs messaging.operation.name=push messaging.operation.type=send messaging.system=storagegen outcome=canceled storagegen.kind=queue storagegen.name=jobs storagegen.operation=push",
		"set node_output client Unset outcome=ok storagegen.kind=cache storagegen.name=node_output storagegen.operation=set",
		"set node_output client Unset outcome=ok storagegen.kind=cache storagegen.name=node_output storagegen.operation=set",
		"get node_output client Unset outcome=hit storagegen.kind=cache storagegen.name=node_output storagegen.operation=get",
		"delete node_output client Unset outcome=ok storagegen.kind=cache storagegen.name=node_output storagegen.operation=delete",
		"get local_out client Unset outcome=miss storagegen.kind=cache storagegen.name=local_out storagegen.operation=get",
		"push tasks producer Unset messaging.destination.name=tasks messaging.message.id=id-1 messaging.operation.name=push messaging.operation.type=send messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=push",
		"push tasks producer Unset messaging.batch.message_count=2 messaging.destination.name=tasks messaging.operation.name=push messaging.operation.type=send messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=push",
		"receive tasks consumer Unset messaging.destination.name=tasks messaging.message.id=id-1 messaging.operation.name=receive messaging.operation.type=receive messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=receive",
		"ack tasks client Unset messaging.destination.name=tasks messaging.message.id=id-1 messaging.operation.name=ack messaging.operation.type=settle messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=ack",
		"ack tasks client Error(lease_lost) messaging.destination.name=tasks messaging.message.id=id-1 messaging.operation.name=ack messaging.operation.type=settle messaging.system=storagegen outcome=lease_lost storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=ack",
		"receive tasks consumer Unset messaging.batch.message_count=2 messaging.destination.name=tasks messaging.operation.name=receive messaging.operation.type=receive messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=receive",
		"nack tasks client Unset messaging.destination.name=tasks messaging.message.id=" + many[0].ID + " messaging.operation.name=nack messaging.operation.type=settle messaging.system=storagegen outcome=ok storagegen.kind=reliable_queue storagegen.name=tasks storagegen.operation=nack",
	}
	spans := rec.Ended()
	if len(spans) != len(want) {
		for _, s := range spans {
			t.Log(spanLine(s))
		}
		t.Fatalf("%d spans; want %d", len(spans), len(want))
	}
	for i, s := range spans {
		if got := spanLine(s); got != want[i] {
			t.Errorf("span %d:\n got %s\nwant %s", i, got, want[i])
		}
		if s.Parent().IsValid() {
			t.Errorf("span %d (%s) has a parent; ctx had none", i, s.Name())
		}
		for _, a := range s.Attributes() {
			v := a.Value.Emit()
			for _, bad := range []string{secretArg, secretPayload, ds.prefix, "{"} {
				if strings.Contains(v, bad) {
					t.Errorf("span %s: attribute %s=%q holds %q", s.Name(), a.Key, v, bad)
				}
			}
		}
	}
}

// TestTraceLink: a trace links producer and handler across two
// DataStores, each with its own TracerProvider: Consume's process span has
// a link to the push span's context, is a child of the span of Consume's
// ctx, and is the parent of its ack; the consumer records the end-to-end
// time once per ack, with its attributes.
func TestTraceLink(t *testing.T) {
	producer, prec, _ := tracedStore(t, Options{}, false)
	consumer, crec, reader := tracedStore(t, Options{Prefix: producer.prefix}, true)
	pq := testReliable[int](producer, "jobs", time.Minute, 0)
	cq := testReliable[int](consumer, "jobs", time.Minute, 0)

	// The scheduler's span: the pushes are its children.
	sctx, sched := producer.tel.tracer.Start(bg, "schedule")
	const n = 4
	for i := range n {
		if err := pq.Push(sctx, i); err != nil {
			t.Fatal(err)
		}
	}
	sched.End()
	pushes := map[trace.SpanID]trace.SpanContext{}
	for _, s := range prec.Ended() {
		if s.Name() == "push jobs" {
			if s.Parent().SpanID() != sched.SpanContext().SpanID() {
				t.Errorf("push span's parent %v; want the scheduler's", s.Parent().SpanID())
			}
			pushes[s.SpanContext().SpanID()] = s.SpanContext()
		}
	}
	if len(pushes) != n {
		t.Fatalf("%d push spans; want %d", len(pushes), n)
	}

	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	cctx, exec := consumer.tel.tracer.Start(ctx, "executor")
	var mu sync.Mutex
	seen := 0
	handlerSpans := map[trace.SpanID]bool{}
	err := cq.Consume(cctx, func(hctx context.Context, d *Delivery[int]) error {
		mu.Lock()
		defer mu.Unlock()
		handlerSpans[trace.SpanContextFromContext(hctx).SpanID()] = true
		if seen++; seen == n {
			cancel()
		}
		return nil
	}, ConsumeOptions{Concurrency: 2, BlockTimeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	exec.End()
	if seen != n {
		t.Fatalf("handled %d of %d", seen, n)
	}
	linked := map[trace.SpanID]bool{}
	processes := map[trace.SpanID]bool{}
	var ackParents []trace.SpanID
	for _, s := range crec.Ended() {
		switch s.Name() {
		case "process jobs":
			processes[s.SpanContext().SpanID()] = true
			if s.SpanKind() != trace.SpanKindConsumer {
				t.Errorf("process span of kind %v", s.SpanKind())
			}
			if s.Parent().SpanID() != exec.SpanContext().SpanID() {
				t.Errorf("process span's parent %v; want Consume's ctx span", s.Parent().SpanID())
			}
			if len(s.Links()) != 1 {
				t.Fatalf("process span has %d links; want 1", len(s.Links()))
			}
			l := s.Links()[0].SpanContext
			p, ok := pushes[l.SpanID()]
			if !ok || !l.Equal(p.WithRemote(true)) && !l.Equal(p) {
				t.Errorf("process span links to %v; want one of the push spans", l)
			}
			linked[l.SpanID()] = true
			if !handlerSpans[s.SpanContext().SpanID()] {
				t.Error("the handler's ctx does not carry its process span")
			}
		case "ack jobs":
			ackParents = append(ackParents, s.Parent().SpanID())
		}
	}
	for _, p := range ackParents {
		if !processes[p] {
			t.Errorf("ack span's parent %v is no process span", p)
		}
	}
	if len(linked) != n || len(processes) != n || len(ackParents) != n {
		t.Errorf("%d process spans linked to %d push spans, %d acks; want %d each", len(processes), len(linked), len(ackParents), n)
	}
	e2e := collect(t, reader, endToEndName)
	if len(e2e) != 1 {
		t.Fatalf("end-to-end series: %v", e2e)
	}
	for _, s := range e2e {
		if s.count != n {
			t.Errorf("end-to-end count %d; want %d", s.count, n)
		}
		if want := "messaging.destination.name=jobs messaging.system=storagegen storagegen.kind=reliable_queue storagegen.name=jobs"; s.attrs != want {
			t.Errorf("end-to-end attributes\n got %s\nwant %s", s.attrs, want)
		}
	}
}

// TestTraceEndToEndAck: Delivery.Ack records the end-to-end time once per
// successful ack, from the push time the meta carried; an ack that lost
// its lease records none, and so does an item pushed without meta.
func TestTraceEndToEndAck(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	plain := newStore(t, Options{Prefix: ds.prefix}) // no provider: no meta
	q := testReliable[int](ds, "e2e", time.Minute, 0)
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := testReliable[int](plain, "e2e", time.Minute, 0).Push(bg, 3); err != nil {
		t.Fatal(err)
	}
	ds3, err := q.ReceiveMany(bg, 3, 0)
	if len(ds3) != 3 || err != nil {
		t.Fatal(len(ds3), err)
	}
	for _, d := range ds3 {
		if (d.pushed > 0) != (d.Value != 3) {
			t.Errorf("item %d: push time %d", d.Value, d.pushed)
		}
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	if err := ds3[0].Ack(bg); !errors.Is(err, ErrLeaseLost) {
		t.Fatal(err)
	}
	e2e := collect(t, reader, endToEndName)
	if s := e2e["reliable_queue/e2e"]; s.count != 2 || len(e2e) != 1 {
		t.Errorf("end-to-end series %v; want 2 acks of reliable_queue/e2e", e2e)
	}
}

// metaOf returns the meta hash of the queue at key.
func metaOf(t *testing.T, key string) map[string]string {
	t.Helper()
	m, err := rawClient(t).HGetAll(bg, metaKey(key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var metaRE = regexp.MustCompile(`^[1-9][0-9]{12} 00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)

// TestTraceMeta: the meta of an item is written by a push with a
// provider, and only then; it is deleted with the item (ack, purge), kept
// on nack and as a dead letter; reclaims sweep fields whose item is gone.
func TestTraceMeta(t *testing.T) {
	ds, _, _ := tracedStore(t, Options{}, false)
	plain := newStore(t, Options{Prefix: ds.prefix})
	q := testReliable[int](ds, "meta", time.Minute, 2)
	if err := testReliable[int](plain, "meta", time.Minute, 2).Push(bg, 0); err != nil {
		t.Fatal(err)
	}
	if m := metaOf(t, q.Key()); len(m) != 0 {
		t.Fatalf("a push without a provider wrote meta %v", m)
	}
	if err := q.PushID(bg, "a", 1); err != nil {
		t.Fatal(err)
	}
	if err := q.PushMany(bg, 2, 3); err != nil {
		t.Fatal(err)
	}
	m := metaOf(t, q.Key())
	if len(m) != 3 {
		t.Fatalf("meta %v; want 3 fields", m)
	}
	for id, v := range m {
		if !metaRE.MatchString(v) {
			t.Errorf("meta of %s = %q", id, v)
		}
	}
	ds4, err := q.ReceiveMany(bg, 4, 0)
	if len(ds4) != 4 || err != nil {
		t.Fatal(len(ds4), err)
	}
	byValue := map[int]*Delivery[int]{}
	for _, d := range ds4 {
		byValue[d.Value] = d
		if d.Value != 0 && (!d.link.IsValid() || d.pushed == 0) {
			t.Errorf("delivery %d: link %v, push time %d", d.Value, d.link, d.pushed)
		}
	}
	if err := byValue[1].Ack(bg); err != nil {
		t.Fatal(err)
	}
	if err := byValue[2].Nack(bg, 0); err != nil {
		t.Fatal(err)
	}
	if err := byValue[3].Nack(bg, 0); err != nil {
		t.Fatal(err)
	}
	m = metaOf(t, q.Key())
	if _, ok := m["a"]; ok || len(m) != 2 {
		t.Fatalf("after an ack and two nacks, meta %v; want the nacked two", m)
	}
	// The second delivery of 2 and 3 is their last: nacked, they are dead
	// letters, and keep their meta.
	again, err := q.ReceiveMany(bg, 4, 0)
	if len(again) != 2 || err != nil {
		t.Fatal(len(again), err)
	}
	for _, d := range again {
		if !d.link.IsValid() {
			t.Errorf("redelivery of %d lost its link", d.Value)
		}
		if err := d.Nack(bg, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := q.Dead().Len(bg); n != 2 || len(metaOf(t, q.Key())) != 2 {
		t.Fatalf("%d dead letters, meta %v; want 2 and 2", n, metaOf(t, q.Key()))
	}
	if n, err := q.Dead().Purge(bg); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	if m := metaOf(t, q.Key()); len(m) != 0 {
		t.Fatalf("after a purge, meta %v", m)
	}

	// Orphans (an ack by a process whose scripts predate the meta) are
	// swept by a reclaim; the meta of a live item stays.
	if err := q.PushID(bg, "live", 9); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t)
	for i := range 50 {
		raw.HSet(bg, metaKey(q.Key()), fmt.Sprint("orphan-", i), "1700000000000")
	}
	if _, err := q.Reclaim(bg); err != nil {
		t.Fatal(err)
	}
	if m := metaOf(t, q.Key()); len(m) != 1 || m["live"] == "" {
		t.Fatalf("after a reclaim, meta has %d fields; want the live item's only", len(m))
	}
}

// TestTraceMetaReceipt: a receive that go-redis sends again (the same
// take, by its receipt) returns each item's meta too.
func TestTraceMetaReceipt(t *testing.T) {
	ds, _, _ := tracedStore(t, Options{}, false)
	q := testReliable[int](ds, "rx", time.Minute, 0)
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	cl, release, err := ds.Connection.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rk := receiptKey(q.r.key, "again")
	first, _, _, err := q.r.take(bg, cl, rk, "", 2)
	if len(first) != 2 || err != nil {
		t.Fatal(len(first), err)
	}
	second, _, _, err := q.r.take(bg, cl, rk, "", 2)
	if len(second) != 2 || err != nil {
		t.Fatal(len(second), err)
	}
	for i := range first {
		if first[i].meta == "" || second[i].meta != first[i].meta {
			t.Errorf("item %d: meta %q, then %q on the retried take", i, first[i].meta, second[i].meta)
		}
	}
}

// TestTraceMetaHostile: meta values that do not parse (set by hand) are
// ignored: the delivery comes with no link and no push time, no error,
// and Consume's process span has no link.
func TestTraceMetaHostile(t *testing.T) {
	ds, rec, reader := tracedStore(t, Options{}, true)
	plain := newStore(t, Options{Prefix: ds.prefix})
	pq := testReliable[int](plain, "hostile", time.Minute, 0)
	const valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	values := []string{
		"", " ", "abc", "-5", "0", "99999999999999999999999", "1700000000000x",
		"1700000000000 ", "1700000000000 garbage", "1700000000000 00-zz-yy-01",
		"1700000000000 00-00000000000000000000000000000000-b7ad6b7169203331-01",
		"1700000000000 ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"1700000000000 " + strings.Repeat("x", 10000),
		"1700000000000 " + valid + " \x00\xff,,==",
		"x " + valid,
	}
	ids := make([]string, len(values))
	for i, v := range values {
		ids[i] = fmt.Sprint("h", i)
		if err := pq.PushID(bg, ids[i], i); err != nil {
			t.Fatal(err)
		}
		rawClient(t).HSet(bg, metaKey(pq.Key()), ids[i], v)
	}
	q := testReliable[int](ds, "hostile", time.Minute, 0)
	got, err := q.ReceiveMany(bg, len(values), 0)
	if len(got) != len(values) || err != nil {
		t.Fatal(len(got), err)
	}
	for _, d := range got {
		v := values[d.Value]
		// Each part stands on its own: a valid traceparent after a push
		// time that does not parse still links.
		wantLink := strings.Contains(v, valid)
		if wantLink != d.link.IsValid() {
			t.Errorf("meta %.40q: link %v", v, d.link)
		}
		wantPushed := strings.HasPrefix(v, "1700000000000") && !strings.HasPrefix(v, "1700000000000x")
		if wantPushed != (d.pushed == 1700000000000) || !wantPushed && d.pushed != 0 {
			t.Errorf("meta %.40q: push time %d", v, d.pushed)
		}
		d.Nack(bg, 0)
	}
	// Through Consume: no link from a meta that does not parse, every
	// item acked, and an end-to-end time only for the ones with a push time.
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := 0
	err = q.Consume(ctx, func(context.Context, *Delivery[int]) error {
		mu.Lock()
		defer mu.Unlock()
		if seen++; seen == len(values) {
			cancel()
		}
		return nil
	}, ConsumeOptions{BlockTimeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	links := 0
	for _, s := range rec.Ended() {
		if s.Name() == "process hostile" {
			links += len(s.Links())
			if s.Status().Code == codes.Error {
				t.Errorf("process span status %v", s.Status())
			}
		}
	}
	if links != 2 {
		t.Errorf("%d links; want 2 (the valid traceparents)", links)
	}
	pushed := 0
	for _, v := range values {
		if strings.HasPrefix(v, "1700000000000") && !strings.HasPrefix(v, "1700000000000x") {
			pushed++
		}
	}
	if s := collect(t, reader, endToEndName)["reliable_queue/hostile"]; s.count != uint64(pushed) {
		t.Errorf("end-to-end count %d; want %d", s.count, pushed)
	}
}

// TestTraceMetaSharded: each shard has its own meta, written, returned
// and deleted with its items.
func TestTraceMetaSharded(t *testing.T) {
	ds, _, _ := tracedStore(t, Options{}, false)
	q := NewReliableQueue[int](ds, &QueueDecl{Name: "sh", Prefix: ds.prefix, Key: MustKeyPattern("sh"), Lease: time.Minute, Shards: 3})
	const n = 30
	for i := range n {
		if err := q.Push(bg, i); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, r := range q.sh.rel {
		m := metaOf(t, r.key)
		total += len(m)
		items, _ := rawClient(t).HLen(bg, r.keys[keyItems]).Result()
		if int64(len(m)) != items {
			t.Errorf("shard %s: %d items, %d meta fields", r.key, items, len(m))
		}
	}
	if total != n {
		t.Fatalf("meta fields over the shards: %d; want %d", total, n)
	}
	for range n {
		d, ok, err := q.Receive(bg, time.Second)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		if !d.link.IsValid() {
			t.Errorf("delivery %d has no link", d.Value)
		}
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range q.sh.rel {
		if m := metaOf(t, r.key); len(m) != 0 {
			t.Errorf("shard %s: meta %v after every ack", r.key, m)
		}
	}
}

// TestParseMeta: parseMeta never fails, whatever it is given.
func TestParseMeta(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(bg, sc)
	d := &declTel{t: &telemetry{tracer: sdktrace.NewTracerProvider().Tracer("x")}}
	arg := d.metaArg(ctx)
	if arg != "+ 00-01000000000000000000000000000000-0200000000000000-01" {
		t.Fatalf("metaArg = %q", arg)
	}
	pushed, got := parseMeta("1234" + arg[1:])
	if pushed != 1234 || !got.Equal(sc.WithRemote(true)) {
		t.Errorf("parseMeta = %d, %v; want 1234, %v", pushed, got, sc)
	}
	ts, _ := trace.ParseTraceState("k=v,w=x")
	arg = d.metaArg(trace.ContextWithSpanContext(bg, sc.WithTraceState(ts)))
	if _, got := parseMeta("1" + arg[1:]); got.TraceState().String() != "k=v,w=x" || got.SpanID() != sc.SpanID() {
		t.Errorf("metaArg %q parsed back as %v", arg, got)
	}
	for _, s := range []string{"", " ", "  ", "1 2 3 4 5", "\xff", "1 00-", strings.Repeat("9", 400)} {
		parseMeta(s) // must not panic
	}
	if (*declTel)(nil).metaArg(ctx) != "" {
		t.Error("no provider: metaArg writes meta")
	}
	if (&declTel{t: &telemetry{}}).metaArg(ctx) != "+" {
		t.Error("a MeterProvider only: metaArg writes a trace context")
	}
}

// TestTraceOnlyCounts: with a TracerProvider and no MeterProvider, the
// paths that count items apart from a call (dead letters, reclaims,
// foreign entries) record nothing and never reach a missing instrument.
func TestTraceOnlyCounts(t *testing.T) {
	ds, rec, _ := tracedStore(t, Options{}, false)
	raw := rawClient(t)
	q := testReliable[int](ds, "traceonly", time.Minute, 1)
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	for _, d := range mustReceive(t, q, 2) {
		if err := d.Nack(bg, 0); err != nil { // the last delivery: a dead letter
			t.Fatal(err)
		}
	}
	if err := q.Push(bg, 3); err != nil {
		t.Fatal(err)
	}
	mustReceive(t, q, 1)
	expireLeases(t, raw, q.Key())
	if n, err := q.Reclaim(bg); n != 1 || err != nil {
		t.Fatalf("Reclaim = %d, %v; want 1", n, err)
	}
	if err := raw.LPush(bg, q.Key(), "not-an-id").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Receive(bg, 0); !errors.Is(err, ErrDecode) {
		t.Fatalf("Receive of a foreign entry: %v; want ErrDecode", err)
	}
	if n, err := q.Dead().Len(bg); n != 4 || err != nil {
		t.Fatalf("dead letters = %d, %v; want 4", n, err)
	}
	if len(rec.Ended()) == 0 {
		t.Fatal("no spans recorded")
	}
}

// TestMetaKeyOnlyWithProvider: without a provider, the push and receive
// scripts get no Q:meta key (go-redis allocates for every key and every
// reply element, and a DataStore without telemetry has no use for the
// meta), so an at-least-once Push allocates what it did before Q:meta
// existed; with one, both get it. The keys each script call got are read
// back from the server's slow log (every command logged).
func TestMetaKeyOnlyWithProvider(t *testing.T) {
	raw := rawClient(t)
	if _, ok := raw.(*redis.ClusterClient); ok {
		t.Skip("the slow log is per node; the single-server run covers it")
	}
	old, err := raw.ConfigGet(bg, "slowlog-log-slower-than").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.ConfigSet(bg, "slowlog-log-slower-than", old["slowlog-log-slower-than"]) })
	if err := raw.ConfigSet(bg, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	shas := map[string]bool{}
	for _, sc := range []*script{pushScript, receiveScript} {
		shas[sc.shebang.Hash()], shas[sc.noFlags.Hash()] = true, true
	}
	// numKeys returns, per push or receive script call that named key,
	// its number of keys.
	numKeys := func(key string) []string {
		logs, err := raw.SlowLogGet(bg, 128).Result()
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for i := len(logs) - 1; i >= 0; i-- { // oldest first
			args := logs[i].Args
			if len(args) > 3 && strings.EqualFold(args[0], "evalsha") && shas[args[1]] && args[3] == key {
				n = append(n, args[2])
			}
		}
		return n
	}
	plain := newStore(t, Options{})
	traced, _, _ := tracedStore(t, Options{}, true)
	for _, c := range []struct {
		ds   *DataStore
		want string // the push's and the receive's key counts
	}{{plain, "[10 11]"}, {traced, "[11 12]"}} {
		q := testReliable[int](c.ds, "metakeys"+strconv.FormatBool(c.ds == traced), time.Minute, 0)
		if err := raw.SlowLogReset(bg).Err(); err != nil {
			t.Fatal(err)
		}
		if err := q.Push(bg, 1); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := q.Receive(bg, 0); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if got := fmt.Sprint(numKeys(q.Key())); got != c.want {
			t.Errorf("traced %v: push and receive got %s keys, want %s", c.ds == traced, got, c.want)
		}
	}
}
