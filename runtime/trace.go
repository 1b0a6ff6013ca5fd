package runtime

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry spans, and what travels beside at-least-once items.
//
// With Options.TracerProvider, every call of the typed API is a span,
// named "<operation> <declaration name>" ("push jobs", "receive jobs",
// "get node_output"), started and ended in the same wrappers that record
// the metrics (one nil check covers both): kind Producer for a push,
// Consumer for a pop or receive, Client for an ack, a nack or a cache
// operation. Its attributes are the metrics' (outcome set at the end),
// plus messaging.message.id for an at-least-once call that carries one
// item (a Push, a PushID, a Receive's delivery, an Ack or Nack) and
// messaging.batch.message_count for the other queue calls with several
// (PushMany, PopMany, ReceiveMany). Its status is Error with the outcome
// (lease_lost, canceled, error) as description for a call that failed:
// never an error's message, a key, an argument or a payload.
//
// At-least-once items carry, beside the payload, a field of the hash
// <Q>:meta (keyspace.MetaPart): "<push ms> [<traceparent> [<tracestate>]]",
// written by the push script when the pusher's DataStore has a provider
// (the push time by the server's clock, and the W3C trace context of the
// push's span when it has a TracerProvider). The receive script returns
// it beside each item; a Delivery keeps the push time, for the end-to-end
// histogram recorded at its ack, and the span context, which Consume's
// "process <name>" span links to. A field that does not parse is ignored.

// endToEndName is the histogram of the time from an item's first push to
// its ack, in seconds.
const endToEndName = "storagegen.queue.end_to_end.duration"

// endToEndBuckets are its bounds, in seconds: from 1ms to a day (items may
// wait in a queue for long, or be retried with backoff).
var endToEndBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}

// metaSweep is how many fields of <Q>:meta one run of the reclaim script
// looks at (a random sample), deleting those whose item is gone.
const metaSweep = 100

// opProcessName stands for Consume's handler in span names; it is not a
// metric operation (telOp).
const opProcessName = "process"

// spanDecl is what the spans of one declaration start with, built once:
// per operation its span name and start options (kind and attributes), and
// the attributes of the end-to-end histogram.
type spanDecl struct {
	names    [numOps]string
	opts     [numOps][]trace.SpanStartOption // the span kind
	attrs    [numOps][]attribute.KeyValue    // set once the span records
	procName string
	procOpt  []trace.SpanStartOption
	procKV   []attribute.KeyValue
	e2e      []metric.RecordOption
}

// spanKinds is the span kind of each operation.
var spanKinds = [numOps]trace.SpanKind{
	opPush: trace.SpanKindProducer, opPop: trace.SpanKindConsumer, opReceive: trace.SpanKindConsumer,
	opAck: trace.SpanKindClient, opNack: trace.SpanKindClient,
	opGet: trace.SpanKindClient, opSet: trace.SpanKindClient, opDelete: trace.SpanKindClient,
}

// outcomeKVs are the outcome attribute of each outcome, for a span's end.
var outcomeKVs = func() (kv [numOutcomes][]attribute.KeyValue) {
	for out := range numOutcomes {
		kv[out] = []attribute.KeyValue{attribute.String("outcome", outcomeNames[out])}
	}
	return kv
}()

func newSpanDecl(t *telemetry, kind telKind, name string) spanDecl {
	var s spanDecl
	if t.tracer != nil {
		for op := range numOps {
			s.names[op] = opNames[op] + " " + name
			s.opts[op] = []trace.SpanStartOption{trace.WithSpanKind(spanKinds[op])}
			s.attrs[op] = opAttrs(kind, name, opNames[op], opTypes[op])
		}
		s.procName = opProcessName + " " + name
		s.procOpt = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
		s.procKV = opAttrs(kind, name, opProcessName, opProcessName)
	}
	if kind == kindReliable {
		s.e2e = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(declAttrs(kind, name)...))}
	}
	return s
}

// start starts the span of one call of op, a child of ctx's span, and
// returns its context; span is nil without a TracerProvider (ctx is then
// returned as is).
//
// The attributes are set after the start, and only on a span that
// records: given at the start, the SDK copies them into its start
// configuration for every span, sampled or not, which was about a third
// of a Start's cost when 1% of traces are sampled (a CPU profile of a
// coalesced Push+Get from 64 goroutines). A sampler therefore does not see
// them; the span's name holds the operation and the declaration.
func (d *declTel) start(ctx context.Context, op telOp) (context.Context, trace.Span) {
	if d.t.tracer == nil {
		return ctx, nil
	}
	ctx, span := d.t.tracer.Start(ctx, d.names[op], d.opts[op]...)
	if span.IsRecording() {
		span.SetAttributes(d.attrs[op]...)
	}
	return ctx, span
}

// end ends span (nil: none) with outcome out: its outcome attribute, and
// status Error with the outcome's name for a failed call.
func endSpan(span trace.Span, out telOutcome) {
	if span == nil {
		return
	}
	span.SetAttributes(outcomeKVs[out]...)
	switch out {
	case outLeaseLost, outCanceled, outError:
		span.SetStatus(codes.Error, outcomeNames[out])
	}
	span.End()
}

// spanMessageID sets messaging.message.id on span (nil: none).
func spanMessageID(span trace.Span, id string) {
	if span != nil {
		span.SetAttributes(attribute.String("messaging.message.id", id))
	}
}

// spanCount sets messaging.batch.message_count on span (nil: none).
func spanCount(span trace.Span, n int) {
	if span != nil {
		span.SetAttributes(attribute.Int("messaging.batch.message_count", n))
	}
}

// startSettle starts an ack or nack (op) of the delivery id: its start
// time and its span, a child of ctx's span, with the delivery's ID.
func (d *declTel) startSettle(ctx context.Context, op telOp, id string) (context.Context, trace.Span, time.Time) {
	start := time.Now()
	ctx, span := d.start(ctx, op)
	spanMessageID(span, id)
	return ctx, span, start
}

// settle records one ack or nack of the delivery id, started at start,
// which returned err, in its metrics and in a span that starts now under
// ctx; an ack that settled the item also records its end-to-end time from
// pushed (0: unknown).
func (d *declTel) settle(ctx context.Context, span trace.Span, op telOp, err error, start time.Time, pushed int64) {
	if errors.Is(err, ErrNotReplicated) {
		err = nil // it settled the item (see settled)
	}
	d.settled(ctx, op, err, start)
	out := outcomeOf(err, outOK)
	endSpan(span, out)
	if op == opAck && out == outOK {
		d.endToEndFrom(ctx, pushed)
	}
}

// endToEndFrom records the time from pushed (ms of the server's clock; 0:
// unknown, nothing is recorded) to now by this process's clock: the two
// clocks may differ, so a time below zero counts as zero.
func (d *declTel) endToEndFrom(ctx context.Context, pushed int64) {
	if pushed <= 0 || d.t.endToEnd == nil || d.e2e == nil {
		return
	}
	s := float64(time.Now().UnixMilli()-pushed) / 1000
	d.t.endToEnd.Record(ctx, max(s, 0), d.e2e...)
}

// metaArg is the push script's meta argument for a push call under ctx:
// "" (write no meta) without a provider; else "+", followed, with a
// TracerProvider and a sampled span context in ctx, by " <traceparent>"
// and " <tracestate>" when it has one.
func (d *declTel) metaArg(ctx context.Context) string {
	if d == nil {
		return ""
	}
	if d.t.tracer == nil {
		return "+"
	}
	// Only a sampled span's context: the handler's span would link to a
	// span no exporter recorded, and each item would carry 55 bytes more
	// for it (with a sampler keeping 1%, 99% of items).
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return "+"
	}
	// "+ 00-<trace ID>-<span ID>-<flags>", the W3C traceparent (version
	// 00), written in one buffer: the propagator would allocate for its
	// carrier, its context and each hex string.
	const n = len("+ 00-") + 32 + 1 + 16 + 1 + 2
	var b [n]byte
	copy(b[:], "+ 00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[5:37], tid[:])
	b[37] = '-'
	hex.Encode(b[38:54], sid[:])
	b[54] = '-'
	// Only the flags version 00 defines (sampled, random), as the
	// propagator's Inject writes them: a receiver refuses a version 00
	// traceparent with any other bit set, and the item would lose its link.
	hex.Encode(b[55:57], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	if ts := sc.TraceState(); ts.Len() > 0 {
		// The tracestate comes from whoever called the pusher (an incoming
		// request's header: up to 32 entries, keys and values of up to 256
		// bytes each): written beside every item of the call, it could
		// make each item's meta about 16 KiB. Only one of at most
		// maxMetaTraceState bytes travels (the length the W3C asks
		// tracers to propagate at least); a longer one is left out, and
		// the traceparent, the link, stays.
		if s := ts.String(); len(s) <= maxMetaTraceState {
			return string(b[:]) + " " + s
		}
	}
	return string(b[:])
}

// maxMetaTraceState is the longest tracestate written beside an item.
const maxMetaTraceState = 512

// parseMeta reads a field of <Q>:meta, which any client could have
// written: the push time in ms (0 when it does not parse) and the span
// context (invalid when there is none or it does not parse). It never
// fails.
func parseMeta(meta string) (pushed int64, sc trace.SpanContext) {
	ms, rest, _ := strings.Cut(meta, " ")
	if v, err := strconv.ParseInt(ms, 10, 64); err == nil && v > 0 {
		pushed = v
	}
	if rest == "" {
		return pushed, sc
	}
	parent, state, _ := strings.Cut(rest, " ")
	c := metaCarrier{parent: parent, state: state}
	ctx := propagation.TraceContext{}.Extract(context.Background(), &c)
	if sc = trace.SpanContextFromContext(ctx); !sc.IsValid() {
		return pushed, trace.SpanContext{}
	}
	return pushed, sc
}

// metaCarrier carries a traceparent and a tracestate for the W3C
// propagator.
type metaCarrier struct{ parent, state string }

func (c *metaCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}

func (c *metaCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.parent = value
	case "tracestate":
		c.state = value
	}
}

func (c *metaCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// process starts Consume's span for the handler of a delivery: "process
// <name>", a child of ctx's span, linked to the span that pushed the item
// when its meta carried one. span is nil without a TracerProvider.
func (d *declTel) process(ctx context.Context, id string, link trace.SpanContext) (context.Context, trace.Span) {
	if d.t.tracer == nil {
		return ctx, nil
	}
	opts := d.procOpt
	if link.IsValid() {
		opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: link}))
	}
	ctx, span := d.t.tracer.Start(ctx, d.procName, opts...)
	if span.IsRecording() {
		span.SetAttributes(d.procKV...)
		span.SetAttributes(attribute.String("messaging.message.id", id))
	}
	return ctx, span
}
