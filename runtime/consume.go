package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Handler handles one delivery for Consume. Returning nil acks the item;
// an error nacks it with backoff; a panic is recovered and counts as an
// error. ctx is cancelled when the delivery loses its lease or when
// Consume's grace period ends.
type Handler[T any] func(ctx context.Context, d *Delivery[T]) error

// ConsumeOptions configures Consume. The zero value is usable.
type ConsumeOptions struct {
	// Concurrency is how many handlers run at once; default 1. Each
	// waiting receiver holds one connection of the blocking pool, so it
	// may not be more than Options.BlockingPoolSize (Consume returns
	// ErrInvalidArgument).
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
// finish within opts.GracePeriod, and returns nil. While a handler runs,
// its item's lease is extended every third of the lease. Nothing in flight
// is lost when Consume stops, or when its process dies: an item that was
// not acked comes back when its lease runs out.
//
// Server errors (a restart, a failover, a network cut) are logged and
// retried, with backoff shared by all receivers and never more often than
// about 20 times a second. Replies that retrying cannot fix (WRONGPASS,
// NOAUTH, NOPERM, an unknown command) are retried too, but only for
// UnfixableWindow (10s) with no successful receive in between, which rides
// out a credential rotation; then Consume stops receiving, lets running
// handlers finish as when ctx ends, and returns an error wrapping the
// reply. Consume also returns an error for bad arguments, or wrapping
// ErrClosed when the DataStore is closed; otherwise nil.
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
	if n := q.r.ds.Connection.blockMax; opts.Concurrency > n {
		// Each waiting receiver holds a blocking connection: more
		// receivers than connections would only take turns failing.
		return opError("consume", q.key, fmt.Errorf("%w: Concurrency %d is more than BlockingPoolSize %d", ErrInvalidArgument, opts.Concurrency, n))
	}
	c := &consumer[T]{q: q, handler: handler, opts: opts, cnt: opts.Counters, log: opts.Logger.With("queue", q.key)}
	// Receivers stop when ctx ends or when c gives up; handlers outlive
	// that by the grace period.
	ctx, c.giveUp = context.WithCancel(ctx)
	defer c.giveUp()
	handlerCtx, stopHandlers := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopHandlers(errGraceOver)

	var wg sync.WaitGroup
	for range opts.Concurrency {
		wg.Go(func() { c.work(ctx, handlerCtx) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
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
	giveUp  context.CancelFunc    // stops the receivers
}

// work is one receiver: receive, handle, settle, until ctx ends.
func (c *consumer[T]) work(ctx, handlerCtx context.Context) {
	for ctx.Err() == nil {
		d, ok, err := c.q.receive(ctx, c.opts.BlockTimeout, c.cnt)
		switch {
		case err == nil:
			c.retry.succeeded()
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrClosed):
			c.closed.Store(true)
			return
		case errors.Is(err, ErrDecode):
			// The item was given back or made a dead letter already.
			c.log.Warn("storagegen: undecodable item", "err", err)
			continue
		default:
			if isUnfixable(err) && c.retry.unfixable(time.Now()) {
				c.log.Error("storagegen: receive keeps failing with a reply that retrying cannot fix; consume stops", "err", err, "for", unfixableWindow)
				cause := err
				var e *Error
				if errors.As(err, &e) {
					cause = e.Err // the reply, without a second "storagegen: …"
				}
				c.fatal.CompareAndSwap(nil, &cause)
				c.giveUp()
				return
			}
			wait := c.retry.failed()
			c.log.Warn("storagegen: receive failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
			sleep(ctx, wait)
			continue
		}
		if ok {
			c.cnt.add(received, 1)
			hook("received")
			c.handle(ctx, handlerCtx, d)
		}
	}
}

// handle runs the handler on d with its lease kept alive, then acks or
// nacks d unless the handler settled it, the lease was lost, or the grace
// period is over.
func (c *consumer[T]) handle(ctx, handlerCtx context.Context, d *Delivery[T]) {
	hctx, cancel := context.WithCancelCause(handlerCtx)
	defer cancel(nil)
	stop := make(chan struct{})
	var keeper sync.WaitGroup
	keeper.Go(func() { c.keepLease(hctx, cancel, d, stop) })
	err := c.call(hctx, d)
	close(stop)
	keeper.Wait()

	log := c.log.With("id", d.ID, "attempt", d.Attempt)
	switch cause := context.Cause(hctx); {
	case d.settled.Load():
		return
	case errors.Is(cause, errGraceOver):
		log.Warn("storagegen: handler stopped by the end of the grace period; the item comes back when its lease runs out")
		return
	case errors.Is(cause, ErrLeaseLost):
		log.Warn("storagegen: lease lost while the handler ran; the item is delivered again")
		return
	}
	sctx, scancel := settleContext(ctx)
	defer scancel()
	if err == nil {
		hook("acking")
		switch aerr := d.Ack(sctx); {
		case aerr == nil:
			hook("acked")
			c.cnt.add(acked, 1)
		default:
			log.Warn("storagegen: ack failed; the item is delivered again after its lease", "err", aerr)
		}
		return
	}
	delay := c.backoff(d.Attempt)
	dead, nerr := d.r.nack(sctx, &d.settled, d.receipt, d.ID, d.Attempt, delay, err.Error(), c.cnt)
	switch {
	case nerr != nil:
		log.Warn("storagegen: handler failed, and so did the nack; the item is delivered again after its lease", "err", err, "nack_err", nerr)
	case dead:
		log.Warn("storagegen: handler failed on the last delivery; the item is now a dead letter", "err", err)
	default:
		log.Info("storagegen: handler failed; the item is delivered again", "err", err, "retry_in", delay)
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

// keepLease extends d's lease every third of the lease until stop closes,
// and cancels the handler if the lease is lost.
func (c *consumer[T]) keepLease(ctx context.Context, cancel context.CancelCauseFunc, d *Delivery[T], stop <-chan struct{}) {
	lease := d.r.lease
	tick := time.NewTicker(lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if d.settled.Load() {
			return
		}
		ectx, ecancel := context.WithTimeout(ctx, lease/3)
		err := d.Extend(ectx, lease)
		ecancel()
		switch {
		case errors.Is(err, ErrLeaseLost):
			if !d.settled.Load() {
				cancel(err)
			}
			return
		case err != nil && ctx.Err() == nil:
			c.log.Warn("storagegen: extending a lease failed; retrying", "id", d.ID, "err", err)
		}
	}
}

// backoff is the nack delay after the given delivery failed.
func (c *consumer[T]) backoff(attempt int) time.Duration {
	d := c.opts.RetryBackoff
	for i := 1; i < attempt && d < c.opts.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, c.opts.MaxRetryBackoff)
}

// Receive retries after server errors are spaced by a gate that all
// receivers of one Consume share: at least minRetryGap apart, so at most
// 20 a second in all, and each at least the current delay after its
// failure; the delay doubles with each failure in a row, up to
// maxRetryDelay, and resets on success.
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
func (g *retryGate) failed() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delay = min(max(2*g.delay, minRetryGap), maxRetryDelay)
	now := time.Now()
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
