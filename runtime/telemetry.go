package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry metrics, named after the schema's declarations.
//
// A DataStore made with Options.MeterProvider or Options.TracerProvider
// has one telemetry with its instruments and its tracer (spans: trace.go);
// without either, every handle's *declTel and every coalescer's *batchTel
// is nil, and every recording point is a nil check: nothing is recorded
// and nothing is allocated. With a TracerProvider only, the handles have
// a *declTel whose metrics are not recorded (duration is nil). Each queue and cache handle carries
// the *declTel of its declaration (kind and name), looked up once when the
// handle is made; its attribute sets are built once per declaration, so a
// measurement allocates nothing for attributes, and the number of series
// is bounded by declarations × operations × outcomes, whatever the keys'
// arguments are (a key or an argument is never an attribute).
//
// What is recorded, per call of the typed API, coalesced or not (a call
// that shares a batch is recorded as its own call, with its own outcome
// and the latency its caller saw):
//
//   - storagegen.operation.duration (s, histogram): one measurement per
//     call; its count is the number of calls.
//   - storagegen.items ({item}, counter): items a call carried: pushed,
//     popped or received, acked, nacked; and, apart from calls, items
//     that became dead letters (dead_letter: a nack on the last delivery,
//     a reclaim of an expired last delivery, a foreign entry a receive
//     kept) and expired leases that any reclaim of this process handled
//     (reclaim; a Reclaim call is also timed, as one call).
//   - storagegen.batch.size ({call}, histogram): calls per batch that a
//     coalescer sent, by storagegen.batch (push, set, get, pop). A batch
//     may hold calls of several declarations, so it has no name.
//   - storagegen.queue.items ({item}, observable gauge): a queue
//     declaration's items by state, from Stats (gauge.go).
//
// Attributes: storagegen.kind (queue, reliable_queue, cache),
// storagegen.name (the declaration's name), storagegen.operation, outcome;
// queues add OpenTelemetry's messaging attributes: messaging.system
// (storagegen), messaging.destination.name (the declaration's name),
// messaging.operation.name (the operation) and messaging.operation.type
// (send, receive, settle).

// instrumentationName is the scope of the meter and tracer.
const instrumentationName = "github.com/storagegen/storagegen/runtime"

// Kinds of declaration, the values of storagegen.kind.
type telKind uint8

const (
	kindQueue telKind = iota
	kindReliable
	kindCache
	numKinds
)

var kindNames = [numKinds]string{"queue", "reliable_queue", "cache"}

// Operations, the values of storagegen.operation.
type telOp uint8

const (
	opPush telOp = iota
	opPop
	opReceive
	opAck
	opNack
	opGet
	opSet
	opDelete
	opDeadLetter // items that became dead letters (items only, no calls)
	opReclaim    // Reclaim calls, and items reclaimed by them, receives and sweeps
	numOps
)

var opNames = [numOps]string{"push", "pop", "receive", "ack", "nack", "get", "set", "delete", "dead_letter", "reclaim"}

// messaging.operation.type of each queue operation; "" leaves the
// attribute out (the cache's operations, and reclaim). A dead letter is
// a settlement, as OpenTelemetry's messaging conventions class a broker's
// dead-lettering; a reclaim settles nothing (no consumer took a decision:
// a lease ran out) and none of send, receive, create, process, settle
// describes it, so it has no type rather than a wrong one.
var opTypes = [numOps]string{"send", "receive", "receive", "settle", "settle", "", "", "", "settle", ""}

// Outcomes, the values of outcome.
type telOutcome uint8

const (
	outOK        telOutcome = iota
	outEmpty                // a pop or receive that found nothing in time
	outHit                  // a get that found a value
	outMiss                 // a get that found none
	outLeaseLost            // an ack or nack whose delivery no longer held the item
	outCanceled             // ctx ended (cancelled or past its deadline)
	outError                // any other error
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "empty", "hit", "miss", "lease_lost", "canceled", "error"}

// outcomeOf classifies err; ok is the outcome of a nil error.
func outcomeOf(err error, ok telOutcome) telOutcome {
	switch {
	case err == nil:
		return ok
	case errors.Is(err, ErrLeaseLost):
		return outLeaseLost
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outCanceled
	}
	return outError
}

// Batches of the coalescers, the values of storagegen.batch.
const (
	batchPush = iota
	batchSet
	batchGet
	batchPop
	numBatches
)

var batchNames = [numBatches]string{"push", "set", "get", "pop"}

// durationBuckets are the latency histogram's bounds, in seconds: from
// 100µs (a coalesced call on loopback) to 10s (a long blocking pop).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// batchBuckets are the batch-size histogram's bounds, in calls.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000}

// telemetry is a DataStore's instruments.
type telemetry struct {
	duration metric.Float64Histogram
	items    metric.Int64Counter
	batch    metric.Int64Histogram
	endToEnd metric.Float64Histogram // at-least-once queues, push to ack (trace.go)
	tracer   trace.Tracer            // nil without a TracerProvider (spans: trace.go)

	gauges // storagegen.queue.items (gauge.go)

	mu    sync.Mutex                          // serializes writers of decls
	decls atomic.Pointer[map[declID]*declTel] // copied on write: read without a lock
}

type declID struct {
	kind telKind
	name string
}

// declTel is the instruments of one declaration, with every attribute
// set it records with, built once.
type declTel struct {
	t        *telemetry
	rec      [numOps][numOutcomes][]metric.RecordOption
	add      [numOps][numOutcomes][]metric.AddOption
	spanDecl // spans and the end-to-end histogram's attributes (trace.go)
	// watch is the queue instances whose items storagegen.queue.items
	// reports (gauge.go); nil for a cache.
	watch *watch
}

// newTelemetry returns the instruments of mp and tp, or nil when neither
// is set.
func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, statsInterval time.Duration) (*telemetry, error) {
	if mp == nil && tp == nil {
		return nil, nil
	}
	t := &telemetry{}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentationName)
	}
	m0 := map[declID]*declTel{}
	t.decls.Store(&m0)
	if mp == nil {
		return t, nil
	}
	m := mp.Meter(instrumentationName)
	var err1, err2, err3, err4 error
	t.duration, err1 = m.Float64Histogram("storagegen.operation.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of each call of a queue or cache of the schema, as its caller saw it."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	t.items, err2 = m.Int64Counter("storagegen.items",
		metric.WithUnit("{item}"),
		metric.WithDescription("Items carried by calls: pushed, popped, received, acked, nacked."))
	t.batch, err3 = m.Int64Histogram("storagegen.batch.size",
		metric.WithUnit("{call}"),
		metric.WithDescription("Calls per batch that a coalescer sent."),
		metric.WithExplicitBucketBoundaries(batchBuckets...))
	t.endToEnd, err4 = m.Float64Histogram(endToEndName,
		metric.WithUnit("s"),
		metric.WithDescription("Time from the first push of an item of an at-least-once queue to its ack."),
		metric.WithExplicitBucketBoundaries(endToEndBuckets...))
	err5 := t.newGauges(m, statsInterval)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	return t, nil
}

// decl returns the instruments of the declaration kind, name; nil when
// the DataStore records neither metrics nor spans.
func (t *telemetry) decl(kind telKind, name string) *declTel {
	if t == nil {
		return nil
	}
	id := declID{kind, name}
	if d := (*t.decls.Load())[id]; d != nil {
		return d
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.decls.Load()
	if d := old[id]; d != nil {
		return d
	}
	d := newDeclTel(t, kind, name)
	m := make(map[declID]*declTel, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = d
	t.decls.Store(&m)
	return d
}

// declAttrs is what every series and span of the declaration kind, name
// carries, followed by more: storagegen.kind and storagegen.name, and on a
// queue messaging.system and messaging.destination.name (the
// declaration's name, after OpenTelemetry's messaging conventions).
func declAttrs(kind telKind, name string, more ...attribute.KeyValue) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 8)
	kv = append(kv, attribute.String("storagegen.kind", kindNames[kind]), attribute.String("storagegen.name", name))
	if kind != kindCache {
		kv = append(kv, attribute.String("messaging.system", "storagegen"), attribute.String("messaging.destination.name", name))
	}
	return append(kv, more...)
}

// opAttrs is declAttrs with the operation op: storagegen.operation, and on
// a queue messaging.operation.name and, when opType is not empty,
// messaging.operation.type.
func opAttrs(kind telKind, name, op, opType string) []attribute.KeyValue {
	kv := declAttrs(kind, name, attribute.String("storagegen.operation", op))
	if kind != kindCache {
		kv = append(kv, attribute.String("messaging.operation.name", op))
		if opType != "" {
			kv = append(kv, attribute.String("messaging.operation.type", opType))
		}
	}
	return kv
}

func newDeclTel(t *telemetry, kind telKind, name string) *declTel {
	d := &declTel{t: t}
	for op := range numOps {
		for out := range numOutcomes {
			kv := append(opAttrs(kind, name, opNames[op], opTypes[op]), attribute.String("outcome", outcomeNames[out]))
			o := metric.WithAttributeSet(attribute.NewSet(kv...))
			d.rec[op][out] = []metric.RecordOption{o}
			d.add[op][out] = []metric.AddOption{o}
		}
	}
	d.spanDecl = newSpanDecl(t, kind, name)
	if kind != kindCache && t.queueItems != nil {
		d.watch = newWatch(d, kind, name)
	}
	return d
}

// count adds n items to op's series with outcome ok: for what moved
// apart from a call of op (dead letters, items reclaimed). A nil d, or
// one without a MeterProvider (a TracerProvider only), records nothing.
func (d *declTel) count(ctx context.Context, op telOp, n int64) {
	if d != nil && n > 0 && d.t.items != nil {
		d.t.items.Add(ctx, n, d.add[op][outOK]...)
	}
}

// done records one call of op that started at start, with outcome out and
// items items (0 records none).
func (d *declTel) done(ctx context.Context, op telOp, out telOutcome, start time.Time, items int) {
	if d.t.duration == nil {
		return // a TracerProvider only
	}
	d.t.duration.Record(ctx, time.Since(start).Seconds(), d.rec[op][out]...)
	if items > 0 {
		d.t.items.Add(ctx, int64(items), d.add[op][out]...)
	}
}

// batchTel records the sizes of one coalescer's batches.
type batchTel struct {
	h   metric.Int64Histogram
	opt []metric.RecordOption
}

func (t *telemetry) batchTel(which int) *batchTel {
	if t == nil || t.batch == nil {
		return nil
	}
	return &batchTel{h: t.batch, opt: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("storagegen.batch", batchNames[which])))}}
}

// record records one batch of n calls.
func (b *batchTel) record(n int) {
	if b != nil {
		b.h.Record(context.Background(), int64(n), b.opt...)
	}
}

// instrument gives the coalescers of bs their batch-size recorders.
func (bs batchers) instrument(t *telemetry) {
	bs.push.tel = t.batchTel(batchPush)
	bs.set.tel = t.batchTel(batchSet)
	bs.get.tel = t.batchTel(batchGet)
	bs.pop.tel = t.batchTel(batchPop)
}

// settled records one ack or nack of a delivery: one item, counted by
// outcome (ok, lease_lost, canceled, error). An ack applied on the
// primary but not known to be replicated (ErrNotReplicated) did settle
// the item, and counts as ok.
func (d *declTel) settled(ctx context.Context, op telOp, err error, start time.Time) {
	if errors.Is(err, ErrNotReplicated) {
		err = nil
	}
	d.done(ctx, op, outcomeOf(err, outOK), start, 1)
}

// popOutcome is the outcome of a pop or receive that returned err and
// some items (got) or none.
func popOutcome(err error, got bool) telOutcome {
	if err == nil && !got {
		return outEmpty
	}
	return outcomeOf(err, outOK)
}

// itemsIf returns n when cond holds, else 0.
func itemsIf(cond bool, n int) int {
	if cond {
		return n
	}
	return 0
}
