package runtime

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestQueueItemsScriptFlushedEverywhere: on a cluster whose every primary
// lost its scripts, one collection reads every instance, on every node:
// a sample loads the stats script once per node that lacks it, not once.
func TestQueueItemsScriptFlushedEverywhere(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	decl := &QueueDecl{Name: "flushedall", Prefix: ds.prefix, Key: MustKeyPattern("flushedall:{a:int}")}
	const n = 24 // instances: over the slots of every primary of the test cluster
	for i := range n {
		if err := NewReliableQueue[int](ds, decl, i).PushMany(bg, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawClient(t)
	flush := func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }
	if cc, ok := raw.(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(bg, flush); err != nil {
			t.Fatal(err)
		}
	} else if err := raw.ScriptFlush(bg).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := gaugeSeries(t, reader); got["reliable_queue/flushedall/ready"] != 2*n {
		t.Errorf("after SCRIPT FLUSH on every primary: %v; want ready %d", got, 2*n)
	}
}

// TestMetaArgFlags: the traceparent a push writes keeps only the flags
// W3C version 00 defines (sampled, random), as the propagator's Inject
// does: a span context with other bits set (an application may build
// one) must still give a traceparent the receiver parses, or the item
// loses its link.
func TestMetaArgFlags(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: 0xff})
	d := &declTel{t: &telemetry{tracer: sdktrace.NewTracerProvider().Tracer("x")}}
	arg := d.metaArg(trace.ContextWithSpanContext(bg, sc))
	_, got := parseMeta("1" + arg[1:])
	if !got.IsValid() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Fatalf("metaArg %q parsed back as %v; want span %v, sampled", arg, got, sc.SpanID())
	}
	// An unsampled span's context is not written: nothing recorded it.
	unsampled := sc.WithTraceFlags(0)
	if arg := d.metaArg(trace.ContextWithSpanContext(bg, unsampled)); arg != "+" {
		t.Fatalf("metaArg of an unsampled span context = %q, want %q (the push time only)", arg, "+")
	}
}

// TestTraceEndToEndLateAck: an item whose first delivery ran past its
// lease, was delivered again and acked, has one end-to-end time: the late
// ack of the first delivery (which returns nil: the item is gone) does
// not record a second one.
func TestTraceEndToEndLateAck(t *testing.T) {
	ds, reader := meteredStore(t, Options{})
	q := testReliable[int](ds, "late", time.Minute, 0)
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	first, ok, err := q.Receive(bg, 0)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	// The lease runs out (set by hand: no wait) and a reclaim puts it back.
	if err := rawClient(t).ZAdd(bg, q.r.keys[keyLeases], redis.Z{Score: 1, Member: first.ID}).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Reclaim(bg); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	second, ok, err := q.Receive(bg, 0)
	if !ok || err != nil || second.Attempt != 2 {
		t.Fatal(ok, err)
	}
	if err := second.Ack(bg); err != nil {
		t.Fatal(err)
	}
	if err := first.Ack(bg); err != nil {
		t.Fatal(err) // the item is gone: not an error
	}
	if s := collect(t, reader, endToEndName)["reliable_queue/late"]; s.count != 1 {
		t.Errorf("end-to-end count %d; want 1 (one item acked)", s.count)
	}
}

// TestReclaimWithoutHrandfield: an ACL user set up with the README's
// line from before the meta's sweep (no +hrandfield) still receives,
// reclaims and consumes after an upgrade: the sweep, a clean-up, is
// skipped when the server refuses it, instead of failing every reclaim
// and with it every Receive.
func TestReclaimWithoutHrandfield(t *testing.T) {
	redistest.SingleOnly(t, "a server of its own with an ACL user")
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(bg, "ACL", "SETUSER", "old", "on", ">pw", "~*", "+@all", "-hrandfield").Err(); err != nil {
		t.Fatal(err)
	}
	ds, err := New(Options{URL: "redis://old:pw@" + srv.Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	q := testReliable[int](ds, "oldacl", time.Minute, 0)
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Reclaim(bg); err != nil {
		t.Errorf("Reclaim: %v", err)
	}
	d, ok, err := q.Receive(bg, 0)
	if !ok || err != nil {
		t.Fatalf("Receive: %v, %v", ok, err)
	}
	if err := d.Ack(bg); err != nil {
		t.Fatal(err)
	}
}

// TestMetaWrongType: Q:meta is optional beside the items, so a key of
// another type there (anything may write to Redis) fails no call and
// strands no item: pushes store their items and say so, receives lease
// them, acks and purges remove them.
func TestMetaWrongType(t *testing.T) {
	ds, _, _ := tracedStore(t, Options{}, true)
	q := testReliable[int](ds, "wrongtype", time.Minute, 1)
	raw := rawClient(t)
	if err := raw.Set(bg, metaKey(q.Key()), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.PushMany(bg, 1, 2, 3); err != nil {
		t.Errorf("PushMany: %v", err)
	}
	got, err := q.ReceiveMany(bg, 3, 0)
	if len(got) != 3 || err != nil {
		t.Fatalf("ReceiveMany: %d, %v; want 3 items", len(got), err)
	}
	if err := got[0].Ack(bg); err != nil {
		t.Errorf("Ack: %v", err)
	}
	if err := got[1].Nack(bg, 0); err != nil { // the last delivery: a dead letter
		t.Errorf("Nack: %v", err)
	}
	if n, err := q.Dead().Purge(bg); n != 1 || err != nil {
		t.Errorf("Purge: %d, %v; want 1", n, err)
	}
	if _, err := q.Reclaim(bg); err != nil {
		t.Errorf("Reclaim: %v", err)
	}
	s := queueState(t, q.Key())
	if len(s.Items) != 1 || len(s.Leases) != 1 {
		t.Errorf("after it all: %+v; want the one item still leased", s)
	}
}

// TestMetaArgTraceStateBound: a tracestate from the pusher's caller (an
// incoming request's header: up to 32 entries of 512 bytes) travels
// beside each item only up to 512 bytes; a longer one is left out, and
// the traceparent, the link, stays.
func TestMetaArgTraceStateBound(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	d := &declTel{t: &telemetry{tracer: sdktrace.NewTracerProvider().Tracer("x")}}
	var members []string
	for i := range 32 {
		members = append(members, fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 250)))
	}
	ts, err := trace.ParseTraceState(strings.Join(members, ","))
	if err != nil {
		t.Fatal(err)
	}
	arg := d.metaArg(trace.ContextWithSpanContext(bg, sc.WithTraceState(ts)))
	if len(arg) > len("+ 00-")+32+1+16+1+2+1+512 {
		t.Errorf("metaArg of a %d-byte tracestate: %d bytes; want at most 512 of tracestate", len(ts.String()), len(arg))
	}
	if _, got := parseMeta("1" + arg[1:]); got.SpanID() != sc.SpanID() {
		t.Errorf("metaArg %.80q lost the traceparent", arg)
	}
	small, _ := trace.ParseTraceState("k=v")
	if arg := d.metaArg(trace.ContextWithSpanContext(bg, sc.WithTraceState(small))); !strings.HasSuffix(arg, " k=v") {
		t.Errorf("metaArg of a small tracestate = %q", arg)
	}
}
