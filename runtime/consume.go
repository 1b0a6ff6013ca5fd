package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Handler handles one delivery for Consume. Returning nil acks the item;
// an error nacks it with backoff; a panic is recovered and counts as an
// error. ctx is cancelled when the delivery loses its lease or when
// Consume's grace period ends.
type Handler[T any] func(ctx context.Context, d *Delivery[T]) error

// ConsumeOptions configures Consume. The zero value is usable.
type ConsumeOptions struct {
	// Concurrency is how many handlers run at once; default 1. However
	// many, Consume holds one connection of the blocking pool (up to 8 on
	// a sharded queue: see the README's "Sharded queues").
	Concurrency int
	// BlockTimeout is how long one receive waits for an item before it
	// starts over; default 5s. After a server outage, consuming resumes
	// within about two of them.
	BlockTimeout time.Duration
	// GracePeriod is how long handlers still running when ctx ends may go
	// on; default 10s. Then their ctx is cancelled and Consume returns.
	GracePeriod time.Duration
	// RetryBackoff is the delay before an item whose handler failed is
	// delivered again, doubled for each delivery it has had, up to
	// MaxRetryBackoff; defaults 1s and 5m.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Logger receives what Consume has to report (server errors, handler
	// failures and panics, lost leases), never payloads. Default (nil):
	// slog.Default(), so a misconfigured consumer is never silent; pass a
	// logger with slog.DiscardHandler for none.
	Logger *slog.Logger
	// Counters, if not nil, is updated as Consume works.
	Counters *Counters
}

// MaxConcurrency is the most handlers one Consume runs at once.
const MaxConcurrency = 10_000

// The defaults of ConsumeOptions.
const (
	DefaultBlockTimeout    = 5 * time.Second
	DefaultGracePeriod     = 10 * time.Second
	DefaultRetryBackoff    = time.Second
	DefaultMaxRetryBackoff = 5 * time.Minute
)

// Counters count what Consume did; read them with Load at any time.
type Counters struct {
	Received     atomic.Int64 // deliveries handed to the handler
	Acked        atomic.Int64 // deliveries acked after the handler returned nil
	Nacked       atomic.Int64 // deliveries given back after a failure (including undecodable items)
	DeadLettered atomic.Int64 // items made dead letters, by a nack or a reclaim
	Reclaimed    atomic.Int64 // expired leases handled by this process's reclaims
}

type counter int

const (
	received counter = iota
	acked
	nacked
	deadLettered
	reclaimed
)

func (c *Counters) add(k counter, n int64) {
	if c == nil || n == 0 {
		return
	}
	[]*atomic.Int64{&c.Received, &c.Acked, &c.Nacked, &c.DeadLettered, &c.Reclaimed}[k].Add(n)
}

// errGraceOver is the cause of a handler ctx cancelled at the end of the
// grace period.
var errGraceOver = errors.New("consume: grace period over")

// Consume receives items and runs handler on each, opts.Concurrency at a
// time, until ctx ends; then it stops receiving, lets running handlers
// finish within opts.GracePeriod, and returns nil. Nothing in flight is
// lost when Consume stops, or when its process dies: an item that was not
// acked comes back when its lease runs out.
//
// Work is batched on the wire: one receiver leases as many items as there
// are idle handlers (up to MaxReceiveBatch) with one script, acks of
// handlers that finish together are settled by one script, and the
// leases of running handlers are extended, every third of the lease, by
// one script for all of them. So Consume holds one blocking connection,
// whatever its Concurrency.
//
// Server errors (a restart, a failover, a network cut) are logged and
// retried, with backoff, never more often than about 20 times a second.
// Replies that retrying cannot fix (WRONGPASS, NOAUTH, NOPERM, an unknown
// command) are retried too, but only for UnfixableWindow (10s) with no
// successful receive in between, which rides out a credential rotation;
// then Consume stops receiving, lets running handlers finish as when ctx
// ends, and returns an error wrapping the reply. Consume also returns an
// error for bad arguments, or wrapping ErrClosed when the DataStore is
// closed; otherwise nil.
func (q ReliableQueue[T]) Consume(ctx context.Context, handler Handler[T], opts ConsumeOptions) error {
	if q.err != nil {
		return opError("consume", q.key, q.err)
	}
	if err := opts.fill(); err != nil {
		return opError("consume", q.key, err)
	}
	if handler == nil {
		return opError("consume", q.key, fmt.Errorf("%w: nil handler", ErrInvalidArgument))
	}
	c := &consumer[T]{q: q, handler: handler, opts: opts, cnt: opts.Counters, log: opts.Logger.With("queue", q.key),
		acks: make(chan ackRequest[T], opts.Concurrency), settlerDone: make(chan struct{}), flushed: make(chan struct{}),
		running: make(map[*Delivery[T]]*runningDelivery)}
	// The receiver stops when ctx ends or when c gives up; handlers
	// outlive that by the grace period.
	ctx, c.giveUp = context.WithCancel(ctx)
	defer c.giveUp()
	handlerCtx, stopHandlers := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopHandlers(errGraceOver)

	// idle holds a token per handler waiting for work; the receiver
	// leases at most as many items as it takes tokens.
	idle := make(chan struct{}, opts.Concurrency)
	jobs := make(chan *Delivery[T])
	var handlers sync.WaitGroup
	for range opts.Concurrency {
		handlers.Go(func() {
			done := make(chan error, 1) // this handler's ack replies
			idle <- struct{}{}
			for d := range jobs {
				c.handle(ctx, handlerCtx, d, done)
				idle <- struct{}{}
			}
		})
	}
	go func() {
		defer close(jobs)
		c.receive(ctx, idle, jobs)
	}()
	// The ack settler and the lease keeper serve the handlers, and stop
	// once every handler has returned.
	var helpers sync.WaitGroup
	helpersCtx, stopHelpers := context.WithCancel(context.WithoutCancel(ctx))
	helpers.Go(func() { c.settleAcks(helpersCtx) })
	helpers.Go(func() { c.keepLeases(helpersCtx) })

	done := make(chan struct{})
	go func() {
		handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		grace := time.NewTimer(opts.GracePeriod)
		defer grace.Stop()
		select {
		case <-done:
		case <-grace.C:
			stopHandlers(errGraceOver)
			select {
			case <-done:
			case <-time.After(50 * time.Millisecond):
				c.log.Warn("storagegen: handlers still running after the grace period; their items come back when their leases run out")
			}
		}
	}
	select {
	case <-done:
		stopHelpers()
		helpers.Wait()
	default:
		// Handlers outlived the grace period: the helpers stay until
		// they return (they settle nothing then, but must not block).
		go func() {
			<-done
			stopHelpers()
		}()
	}
	if c.closed.Load() {
		return opError("consume", q.key, ErrClosed)
	}
	if err := c.fatal.Load(); err != nil {
		return opError("consume", q.key, fmt.Errorf("receiving failed for %v with replies that retrying cannot fix: %w", unfixableWindow, *err))
	}
	return nil
}

// UnfixableWindow is how long Consume goes on retrying receives that fail
// with replies a retry cannot fix (see Consume) before it returns: long
// enough to ride out a credential rotation in which new connections
// briefly present an old password (a client whose credentials provider
// catches up recovers), short enough that a misconfigured consumer ends
// with its error instead of logging forever.
const UnfixableWindow = 10 * time.Second

// unfixableWindow is UnfixableWindow, shortened by tests.
var unfixableWindow = UnfixableWindow

func (o *ConsumeOptions) fill() error {
	if o.Concurrency < 0 || o.BlockTimeout < 0 || o.GracePeriod < 0 || o.RetryBackoff < 0 || o.MaxRetryBackoff < 0 {
		return fmt.Errorf("%w: negative consume option", ErrInvalidArgument)
	}
	if o.Concurrency > MaxConcurrency {
		return fmt.Errorf("%w: Concurrency %d is more than %d", ErrInvalidArgument, o.Concurrency, MaxConcurrency)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	def(&o.BlockTimeout, DefaultBlockTimeout)
	def(&o.GracePeriod, DefaultGracePeriod)
	def(&o.RetryBackoff, DefaultRetryBackoff)
	def(&o.MaxRetryBackoff, DefaultMaxRetryBackoff)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

type consumer[T any] struct {
	q       ReliableQueue[T]
	handler Handler[T]
	opts    ConsumeOptions
	cnt     *Counters
	log     *slog.Logger
	retry   retryGate
	closed  atomic.Bool
	fatal   atomic.Pointer[error] // why c gave up
	giveUp  context.CancelFunc    // stops the receiver

	acks        chan ackRequest[T] // to the ack settler
	settlerDone chan struct{}      // closed when the ack settler has stopped
	flushMu     sync.Mutex         // guards acking and flushed
	acking      int                // acks sent (or about to be) to the settler and not yet answered
	flushed     chan struct{}      // closed when the settler's next flush ends; acking > 0 promises one

	mu      sync.Mutex // guards running
	running map[*Delivery[T]]*runningDelivery
}

// receive leases items for idle handlers and hands them out on jobs,
// until ctx ends or c gives up.
func (c *consumer[T]) receive(ctx context.Context, idle chan struct{}, jobs chan<- *Delivery[T]) {
	for {
		select {
		case <-idle:
		case <-ctx.Done():
			return
		}
		// Handlers whose acks are on their way are about to be idle too:
		// wait for that flush, so the take leases for all of them at once
		// rather than in slivers (a busy consumer's batches grow, and an
		// idle one waits for nothing).
		c.flushMu.Lock()
		acking, flushed := c.acking, c.flushed
		c.flushMu.Unlock()
		if acking > 0 {
			select {
			case <-flushed:
			case <-ctx.Done():
			}
		}
		goruntime.Gosched() // as in settleAcks: let handlers about to be idle get there
		n := 1
	more:
		for n < MaxReceiveBatch {
			select {
			case <-idle:
				n++
			default:
				break more
			}
		}
		ds, err := c.q.receive(ctx, n, c.opts.BlockTimeout, c.cnt)
		for range n - len(ds) {
			idle <- struct{}{}
		}
		// Leased items are handed out whatever happened meanwhile: they
		// are held, and each has an idle handler waiting.
		for _, d := range ds {
			c.cnt.add(received, 1)
			hook("received")
			jobs <- d
		}
		switch {
		case err == nil:
			c.retry.succeeded()
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrClosed):
			c.closed.Store(true)
			return
		case errors.Is(err, ErrDecode):
			// Those items were given back or made dead letters already.
			c.retry.succeeded()
			c.log.Warn("storagegen: undecodable item", "err", err)
		case isUnfixable(err) && c.retry.unfixable(time.Now()):
			c.log.Error("storagegen: receive keeps failing with a reply that retrying cannot fix; consume stops", "err", err, "for", unfixableWindow)
			cause := err
			var e *Error
			if errors.As(err, &e) {
				cause = e.Err // the reply, without a second "storagegen: …"
			}
			c.fatal.CompareAndSwap(nil, &cause)
			c.giveUp()
			return
		default:
			wait := c.retry.failed()
			c.log.Warn("storagegen: receive failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
			sleep(ctx, wait)
		}
	}
}

// runningDelivery is what the lease keeper knows of a delivery whose
// handler runs.
type runningDelivery struct {
	ctx      context.Context         // the handler's ctx
	cancel   context.CancelCauseFunc // cancels ctx
	extended time.Time               // when its lease last began
}

// handle runs the handler on d with its lease kept alive, then acks or
// nacks d unless the handler settled it, the lease was lost, or the grace
// period is over. done receives the reply to this handler's acks.
func (c *consumer[T]) handle(ctx, handlerCtx context.Context, d *Delivery[T], done chan error) {
	var span trace.Span // the handler's span, and the acks' or nacks' parent
	if d.r.tel != nil {
		if handlerCtx, span = d.r.tel.process(handlerCtx, d.ID, d.link); span != nil {
			ctx = trace.ContextWithSpan(ctx, span)
		}
	}
	outcome := outOK
	defer func() { endSpan(span, outcome) }()
	hctx, cancel := context.WithCancelCause(handlerCtx)
	defer cancel(nil)
	c.mu.Lock()
	c.running[d] = &runningDelivery{ctx: hctx, cancel: cancel, extended: time.Now()}
	c.mu.Unlock()
	err := c.call(hctx, d)
	c.mu.Lock()
	delete(c.running, d)
	c.mu.Unlock()
	outcome = outcomeOf(err, outOK)

	switch cause := context.Cause(hctx); {
	case d.settled.Load():
		return
	case errors.Is(cause, errGraceOver):
		c.log.Warn("storagegen: handler stopped by the end of the grace period; the item comes back when its lease runs out", "id", d.ID, "attempt", d.Attempt)
		return
	case errors.Is(cause, ErrLeaseLost):
		c.log.Warn("storagegen: lease lost while the handler ran; the item is delivered again", "id", d.ID, "attempt", d.Attempt)
		return
	}
	if err == nil {
		hook("acking")
		var start time.Time
		var aspan trace.Span
		actx := ctx
		if d.r.tel != nil {
			actx, aspan, start = d.r.tel.startSettle(ctx, opAck, d.ID)
		}
		aerr := c.ack(d, done)
		if d.r.tel != nil {
			d.r.tel.settle(actx, aspan, opAck, aerr, start, pushedIf(!d.gone.Load(), d.pushed))
		}
		switch {
		case aerr == nil:
			hook("acked")
			c.cnt.add(acked, 1)
		case errors.Is(aerr, ErrNotReplicated):
			c.cnt.add(acked, 1)
			c.log.Warn("storagegen: ack applied on the primary but not known to be replicated; the item comes back only if the primary fails before a replica has the ack", "id", d.ID, "attempt", d.Attempt, "err", aerr)
		default:
			c.log.Warn("storagegen: ack failed; the item is delivered again after its lease", "id", d.ID, "attempt", d.Attempt, "err", aerr)
		}
		return
	}
	sctx, scancel := settleContext(ctx)
	defer scancel()
	delay := c.backoff(d.Attempt)
	var start time.Time
	var nspan trace.Span
	if d.r.tel != nil {
		sctx, nspan, start = d.r.tel.startSettle(sctx, opNack, d.ID)
	}
	dead, nerr := d.r.nack(sctx, &d.settled, d.releaseReceipt(), d.ID, d.Attempt, delay, err.Error(), c.cnt)
	if d.r.tel != nil {
		d.r.tel.settle(sctx, nspan, opNack, nerr, start, 0)
	}
	log := c.log.With("id", d.ID, "attempt", d.Attempt)
	switch {
	case nerr != nil:
		log.Warn("storagegen: handler failed, and so did the nack; the item is delivered again after its lease", "err", err, "nack_err", nerr)
	case dead:
		log.Warn("storagegen: handler failed on the last delivery; the item is now a dead letter", "err", err)
	default:
		log.Info("storagegen: handler failed; the item is delivered again", "err", err, "retry_in", delay)
	}
}

// ackRequest is one handler's ack, for the settler.
type ackRequest[T any] struct {
	d    *Delivery[T]
	done chan<- error
}

// ack has the settler ack d, together with what other handlers ack
// meanwhile, and waits for the outcome.
func (c *consumer[T]) ack(d *Delivery[T], done chan error) error {
	c.flushMu.Lock()
	c.acking++ // the settler takes it off when it answers
	c.flushMu.Unlock()
	select {
	case c.acks <- ackRequest[T]{d, done}:
	case <-c.settlerDone:
		c.flushMu.Lock()
		c.acking--
		c.flushMu.Unlock()
		return opError("ack", c.q.key, ErrClosed)
	}
	select {
	case err := <-done:
		return err
	case <-c.settlerDone:
		return opError("ack", c.q.key, ErrClosed)
	}
}

// settleAcks acks what handlers send, in batches: it takes one request,
// then every request already waiting (up to MaxReceiveBatch), and settles
// them with one script. While that runs, more requests gather for the
// next batch, so batches grow with the load and cost no wait when there
// is none.
func (c *consumer[T]) settleAcks(ctx context.Context) {
	defer close(c.settlerDone)
	batch := make([]ackRequest[T], 0, MaxReceiveBatch)
	hs := make([]held, 0, MaxReceiveBatch)
	rs := make([]*reliable, 0, MaxReceiveBatch)
	for {
		batch, hs, rs = batch[:0], hs[:0], rs[:0]
		select {
		case req := <-c.acks:
			batch = append(batch, req)
		case <-ctx.Done():
			return
		}
		// Handlers made runnable by the same take are about to ack too:
		// let them run first, so one script acks them all.
		goruntime.Gosched()
	gather:
		for len(batch) < MaxReceiveBatch {
			select {
			case req := <-c.acks:
				batch = append(batch, req)
			default:
				break gather
			}
		}
		for _, req := range batch {
			hs, rs = append(hs, req.d.settling()), append(rs, req.d.r)
		}
		// One script per shard the deliveries are on: one for an
		// unsharded queue.
		sctx, cancel := settleContext(ctx)
		res, errs := settleGrouped(sctx, rs, hs, (*reliable).ack)
		cancel()
		c.flushMu.Lock()
		c.acking -= len(batch)
		close(c.flushed)
		c.flushed = make(chan struct{})
		c.flushMu.Unlock()
		for i, req := range batch {
			switch {
			case errs[i] != nil && !errors.Is(errs[i], ErrNotReplicated):
				req.done <- errs[i]
			case res[i] == 0:
				req.d.settled.Store(true)
				req.done <- req.d.r.lost("ack", req.d.ID, req.d.Attempt)
			default:
				req.d.settled.Store(true)
				req.d.gone.Store(res[i] != ackRemoved) // before done: handle reads it after
				req.done <- errs[i]                    // nil, or the ack ran and is not known to be replicated
			}
		}
	}
}

// keepLeases extends the leases of running handlers' deliveries, each
// about every third of the lease, with one script per MaxReceiveBatch of
// them, and cancels a handler whose delivery lost its lease. It runs until
// ctx ends.
func (c *consumer[T]) keepLeases(ctx context.Context) {
	lease := c.q.r.lease
	tick := time.NewTicker(max(lease/6, time.Millisecond))
	defer tick.Stop()
	var due []*Delivery[T]
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due = due[:0]
		now := time.Now()
		c.mu.Lock()
		for d, rd := range c.running {
			// A handler whose ctx ended (its lease was lost, or the grace
			// period is over) gets no more lease: a handler that ignores
			// its ctx must not keep its item from coming back.
			if now.Sub(rd.extended) >= lease/3 && !d.settled.Load() && rd.ctx.Err() == nil {
				due = append(due, d)
			}
		}
		c.mu.Unlock()
		for chunk := range slices.Chunk(due, MaxReceiveBatch) {
			c.extend(ctx, chunk, lease)
		}
	}
}

// extend extends the leases of ds by lease, as keepLeases does.
func (c *consumer[T]) extend(ctx context.Context, ds []*Delivery[T], lease time.Duration) {
	hs := make([]held, len(ds))
	rs := make([]*reliable, len(ds))
	for i, d := range ds {
		hs[i], rs[i] = d.held(), d.r
	}
	began := time.Now()
	ectx, cancel := context.WithTimeout(ctx, lease/3)
	res, errs := settleGrouped(ectx, rs, hs, func(r *reliable, ctx context.Context, hs []held) ([]int64, error) {
		return r.extend(ctx, lease, hs)
	})
	cancel()
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		failed := 0
		for _, e := range errs {
			if e != nil {
				failed++
			}
		}
		c.log.Warn("storagegen: extending leases failed; retrying", "deliveries", failed, "err", firstError(errs))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, d := range ds {
		rd, ok := c.running[d]
		switch {
		case !ok, errs[i] != nil:
		case res[i] == 1:
			rd.extended = began
		case !d.settled.Load():
			rd.cancel(d.r.lost("extend", d.ID, d.Attempt))
		}
	}
}

// call runs the handler, turning a panic into an error.
func (c *consumer[T]) call(ctx context.Context, d *Delivery[T]) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
			c.log.Error("storagegen: handler panicked", "id", d.ID, "attempt", d.Attempt, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	return c.handler(ctx, d)
}

// backoff is the nack delay after the given delivery failed.
func (c *consumer[T]) backoff(attempt int) time.Duration {
	d := c.opts.RetryBackoff
	for i := 1; i < attempt && d < c.opts.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, c.opts.MaxRetryBackoff)
}

// The receiver's retries after server errors are spaced by the Consume's
// retryGate: at least minRetryGap apart, so at most 20 a second, and each
// at least the current delay after its failure; the delay doubles with
// each failure in a row, up to maxRetryDelay, and resets on success.
const (
	minRetryGap   = 50 * time.Millisecond
	maxRetryDelay = time.Second
)

type retryGate struct {
	mu    sync.Mutex
	delay time.Duration
	next  time.Time
	// since when receives have failed with unfixable replies and none has
	// succeeded; zero when the last receive succeeded
	unfixableSince time.Time
}

// failed records a failure and returns how long the caller waits before
// its next attempt.
func (g *retryGate) failed() time.Duration { return g.failedAt(time.Now()) }

// failedAt is failed at the time now, which a test fixes so that the
// schedule it checks does not depend on how fast the machine runs.
func (g *retryGate) failedAt(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delay = min(max(2*g.delay, minRetryGap), maxRetryDelay)
	slot := now.Add(g.delay)
	if g.next.After(slot) {
		slot = g.next
	}
	g.next = slot.Add(minRetryGap)
	return slot.Sub(now)
}

func (g *retryGate) succeeded() {
	g.mu.Lock()
	g.delay = 0
	g.unfixableSince = time.Time{}
	g.mu.Unlock()
}

// unfixable records, at now, a failure that retrying cannot fix, and
// reports whether such failures have gone on for unfixableWindow without
// a success.
func (g *retryGate) unfixable(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unfixableSince.IsZero() {
		g.unfixableSince = now
	}
	return now.Sub(g.unfixableSince) >= unfixableWindow
}

// testHook, when a test of this package sets it before Consume starts, is
// called at the named points of a delivery's way through Consume
// ("received", "acking", "acked"); the crash test kills its process there.
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
