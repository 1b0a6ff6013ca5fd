package runtime

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
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
}

var _ = fmt.Sprint
var _ = time.Second
