package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Coalescing: concurrent calls of one kind (pushes, cache sets, cache gets,
// non-blocking pops) are folded into batches that go to the server
// together, as one command or one pipeline on the command client. It is a
// group commit:
//
//   - A call that finds fewer than maxFlights batches in flight is sent at
//     once, by its own goroutine, alone: with no concurrency, coalescing
//     adds no timer, no wait and no goroutine.
//   - Otherwise it waits in line. When a batch's reply is in, the goroutine
//     that sent it takes the calls waiting in line (up to maxBatchItems
//     items and maxBatchBytes bytes, oldest first; always at least one
//     call) as the next batch and hands it to the first of them, whose
//     goroutine sends it. No goroutine is started, so every batch is sent
//     by a caller that DataStore.Close waits for.
//   - A call whose context ends while it waits in line leaves the line and
//     returns the context's error: nothing of it was sent. A get whose
//     batch was already taken returns the context's error at once too (its
//     reply, when it comes, is dropped: a read changes nothing). A push,
//     set or pop whose batch was taken waits for the batch's reply and
//     returns what happened to its own command, so that a caller knows
//     whether its write took place, and a pop never drops an item.
//   - A batch of one call is sent on the caller's context without its
//     cancellation: its values and its deadline (which go-redis's
//     ContextTimeoutEnabled applies to the socket, as for a command of the
//     caller's own). A batch of several is sent on a context that carries
//     the latest of their deadlines (none if one has none) and ends when
//     every one of their contexts has ended: go-redis then sends nothing
//     for a batch whose callers have all gone, and stops retrying a get
//     batch that nobody waits for.
//   - A panic while a batch is sent (a hook of the caller's client, say)
//     fails every call of the batch, with ErrUnknownOutcome for its
//     writes, gives the flight back and hands the line on, and then goes
//     on up the goroutine that sent the batch: no caller is left waiting.
//
// A batch's writes are never sent twice: go-redis would send a command
// again after losing its reply, and a multi-value LPUSH sent twice stores
// every item of the batch twice. Its commands are marked NoRetry, and a
// reply that is lost after a write may have reached the server is
// returned as ErrUnknownOutcome (applied once, or not at all). Gets, which
// change nothing, are left to go-redis's retries.

const (
	// defaultFlights is how many batches of one kind may be in flight at
	// once. Two keep a batch filling while the other is on the wire; more
	// make smaller batches, and cost more CPU per item for the same
	// throughput (measured: 1, 2, 4 and 8).
	defaultFlights = 2
	// maxBatchItems and maxBatchBytes bound a batch: items pushed, values
	// set or keys read, items popped; and the payload bytes written.
	maxBatchItems = 1000
	maxBatchBytes = 1 << 20
)

type callState uint8

const (
	callIdle      callState = iota
	callQueued              // waiting in line: its owner may still withdraw it
	callTaken               // in a batch: its owner waits for the batch's reply
	callDone                // its batch's reply is in: its results are set
	callAbandoned           // a get whose owner left: the batch's sender recycles it
)

// call is one caller's part of a batch: A holds its arguments and its
// results. Calls are pooled; a caller gets one with coalescer.get and
// gives it back with put once it has read its results.
type call[A any] struct {
	arg   A
	ctx   context.Context
	alone uncancelled // ctx without its cancellation, to send a batch of this call alone
	items int         // items it adds to a batch, for maxBatchItems
	bytes int         // payload bytes, for maxBatchBytes
	err   error

	state callState
	lead  []*call[A]    // a batch this call's goroutine must send
	wake  chan struct{} // one signal: the batch's reply is in, or lead is set
}

// coalescer batches the calls of one kind. send sends one batch, on the
// command client with ctx, and sets every call's results and err; failed
// sets every call's err after send panicked.
type coalescer[A any] struct {
	send       func(ctx context.Context, cl redis.UniversalClient, batch []*call[A])
	failed     error // the error of a call whose batch's send panicked
	abandon    bool  // a caller whose context ends may leave a batch that was taken (reads)
	maxFlights int
	tel        *batchTel // records batch sizes; nil records nothing (telemetry.go)

	mu      sync.Mutex
	flights int
	line    []*call[A]
	spare   [][]*call[A] // batch slices to reuse
	pool    sync.Pool
}

func newCoalescer[A any](off, abandon bool, failed error, send func(context.Context, redis.UniversalClient, []*call[A])) *coalescer[A] {
	b := &coalescer[A]{send: send, failed: failed, abandon: abandon, maxFlights: defaultFlights}
	if off {
		b.maxFlights = math.MaxInt // every call is a batch of its own, sent at once
	}
	b.pool.New = func() any { return &call[A]{wake: make(chan struct{}, 1)} }
	return b
}

func (b *coalescer[A]) get() *call[A] { return b.pool.Get().(*call[A]) }

func (b *coalescer[A]) put(c *call[A]) {
	var zero A
	c.arg, c.ctx, c.alone, c.err, c.items, c.bytes, c.state = zero, nil, uncancelled{}, nil, 0, 0, callIdle
	b.pool.Put(c)
}

// do sends c, alone or in a batch, on cl, and returns once c has its
// results (c.err among them), or, for a coalescer whose callers may
// abandon (gets), with abandoned true when ctx ended first: c then
// belongs to the batch's sender, and the caller must neither read it nor
// put it back. The caller must hold an operation of Connection (acquire),
// so that Close waits for it and for the batches it sends.
func (b *coalescer[A]) do(ctx context.Context, cl redis.UniversalClient, c *call[A]) (abandoned bool) {
	if err := ctx.Err(); err != nil {
		c.err = err
		return false
	}
	c.ctx = ctx
	b.mu.Lock()
	if b.flights < b.maxFlights {
		// Nothing waits in line when a flight is free (a flight that ends
		// takes the line with it), so c goes at once, alone.
		b.flights++
		c.state = callTaken
		batch := append(b.batchSlice(), c)
		b.mu.Unlock()
		b.fly(cl, c, batch)
		return false
	}
	c.state = callQueued
	b.line = append(b.line, c)
	b.mu.Unlock()

	select {
	case <-c.wake:
	case <-ctx.Done():
		b.mu.Lock()
		switch {
		case c.state == callQueued:
			b.withdraw(c)
			b.mu.Unlock()
			c.err = ctx.Err()
			return false
		case c.state == callTaken && c.lead == nil && b.abandon:
			c.state = callAbandoned
			b.mu.Unlock()
			return true
		}
		b.mu.Unlock()
		<-c.wake // the batch decides, or c sends the next one
	}
	if batch := c.lead; batch != nil {
		c.lead = nil
		b.fly(cl, c, batch)
	}
	return false
}

// fly sends batch, which holds self, the caller's own call; then hands the
// calls waiting in line to the first of them as the next batch, or ends
// the flight; then wakes the other calls of batch, and recycles those
// whose callers left.
func (b *coalescer[A]) fly(cl redis.UniversalClient, self *call[A], batch []*call[A]) {
	defer b.land(self, batch)
	ctx, cancel := batchContext(batch)
	defer cancel()
	b.tel.record(len(batch))
	b.send(ctx, cl, batch)
}

// land ends the flight of batch, as fly says; if send panicked, it first
// gives every call of batch b.failed, and lets the panic go on after.
func (b *coalescer[A]) land(self *call[A], batch []*call[A]) {
	if p := recover(); p != nil {
		for _, c := range batch {
			c.err = b.failed
		}
		defer panic(p)
	}
	b.mu.Lock()
	next, cancelled := b.take()
	if next == nil {
		b.flights--
	} else {
		next[0].lead = next
	}
	var left []*call[A]
	for i, c := range batch {
		if c.state == callAbandoned {
			left = append(left, c)
			batch[i] = nil
		} else {
			c.state = callDone
		}
	}
	b.mu.Unlock()

	for _, c := range cancelled {
		c.wake <- struct{}{}
	}
	if next != nil {
		next[0].wake <- struct{}{}
	}
	for _, c := range batch {
		if c != nil && c != self {
			c.wake <- struct{}{}
		}
	}
	for _, c := range left {
		b.put(c)
	}
	clear(batch)
	b.mu.Lock()
	b.spare = append(b.spare, batch[:0])
	b.mu.Unlock()
}

func noop() {}

// uncancelled is a context with the values and the deadline of its
// parent but never done: unlike context.WithoutCancel, it keeps the
// deadline (go-redis's ContextTimeoutEnabled reads it), and unlike
// WithDeadline it allocates nothing, living in its pooled call.
type uncancelled struct{ context.Context }

func (uncancelled) Done() <-chan struct{} { return nil }
func (uncancelled) Err() error            { return nil }

// batchContext returns the context to send batch on, as the comment at
// the top of this file says, and what releases it.
func batchContext[A any](batch []*call[A]) (context.Context, context.CancelFunc) {
	if len(batch) == 1 {
		// The caller's values and deadline, not its cancellation: once
		// sent, the command runs to its reply, so that the caller learns
		// what it did (and a pop's items reach it).
		c := batch[0]
		c.alone = uncancelled{c.ctx} // put clears it
		return &c.alone, noop
	}
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if latest.IsZero() {
		ctx, cancel = context.WithCancel(context.Background())
	} else {
		ctx, cancel = context.WithDeadline(context.Background(), latest)
	}
	var open atomic.Int32
	open.Store(int32(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, c := range batch {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if open.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// take removes the next batch from the line: the oldest calls, up to the
// bounds (at least one). Calls whose context has ended are left out and
// returned in cancelled, their err set: nothing of them was sent. b.mu is
// held.
func (b *coalescer[A]) take() (batch, cancelled []*call[A]) {
	items, bytes, i := 0, 0, 0
	for ; i < len(b.line); i++ {
		c := b.line[i]
		if err := c.ctx.Err(); err != nil {
			c.err, c.state = err, callDone
			cancelled = append(cancelled, c)
			continue
		}
		// (Compared so that no sum can overflow: a PopMany may ask for
		// math.MaxInt items; such a call goes alone.)
		if len(batch) > 0 && (c.items > maxBatchItems-items || c.bytes > maxBatchBytes-bytes) {
			break
		}
		if batch == nil {
			batch = b.batchSlice()
		}
		c.state = callTaken
		batch = append(batch, c)
		items += c.items
		bytes += c.bytes
	}
	n := copy(b.line, b.line[i:])
	clear(b.line[n:])
	b.line = b.line[:n]
	return batch, cancelled
}

// withdraw removes c, whose context ended, from the line. b.mu is held.
func (b *coalescer[A]) withdraw(c *call[A]) {
	for i, w := range b.line {
		if w == c {
			copy(b.line[i:], b.line[i+1:])
			b.line[len(b.line)-1] = nil
			b.line = b.line[:len(b.line)-1]
			c.state = callIdle
			return
		}
	}
}

// batchSlice returns an empty slice for a batch. b.mu is held.
func (b *coalescer[A]) batchSlice() []*call[A] {
	if n := len(b.spare); n > 0 {
		s := b.spare[n-1]
		b.spare = b.spare[:n-1]
		return s
	}
	return make([]*call[A], 0, 16)
}

// groupByKey reorders batch so that the calls on each key are together:
// keys in the order they first appear, the calls on one key in batch
// order. It returns nothing; runs iterates over the groups.
func groupByKey[A any](batch []*call[A], key func(*A) string) {
	for i := 0; i < len(batch); {
		k := key(&batch[i].arg)
		j := i + 1
		for m := j; m < len(batch); m++ {
			if c := batch[m]; key(&c.arg) == k {
				copy(batch[j+1:m+1], batch[j:m])
				batch[j] = c
				j++
			}
		}
		i = j
	}
}

// runs calls fn with each run of calls on one key in batch.
func runs[A any](batch []*call[A], key func(*A) string, fn func(key string, calls []*call[A])) {
	for i := 0; i < len(batch); {
		k := key(&batch[i].arg)
		j := i + 1
		for j < len(batch) && key(&batch[j].arg) == k {
			j++
		}
		fn(k, batch[i:j])
		i = j
	}
}

// The commands of a batch that must not be sent twice. go-redis does not
// send a command again whose NoRetry says so, nor a pipeline that holds one.
type (
	onceInt         struct{ *redis.IntCmd }
	onceStatus      struct{ *redis.StatusCmd }
	onceStringSlice struct{ *redis.StringSliceCmd }
)

func (onceInt) NoRetry() bool         { return true }
func (onceStatus) NoRetry() bool      { return true }
func (onceStringSlice) NoRetry() bool { return true }

// sendBatch sends cmds on cl: one command alone, several as one pipeline. Each
// command's own error is in it afterwards.
func sendBatch(ctx context.Context, cl redis.UniversalClient, cmds []redis.Cmder) {
	if len(cmds) == 1 {
		_ = cl.Process(ctx, cmds[0])
		return
	}
	pipe := cl.Pipeline()
	for _, cmd := range cmds {
		_ = pipe.Process(ctx, cmd)
	}
	_, _ = pipe.Exec(ctx)
}

// sentError is the error of a write that was sent once and not again: a
// reply from the server means it was refused (nothing was written); so
// does a failure to get a connection; any other failure came after the
// write may have reached the server, and is an ErrUnknownOutcome.
func sentError(err error) error {
	if err == nil || isServerError(err) || notSent(err) {
		return mapErr(err)
	}
	return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
}

// notSent reports whether err shows that a command never left the client:
// no connection could be had from the pool or dialled, its TLS handshake
// was refused (tlsRefused), the client is closed, or the batch's context
// ended before it was sent (go-redis checks the context before it sends; a
// deadline that passes while it reads the reply is a net timeout, not a
// context error).
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		errors.As(err, &op) && op.Op == "dial" || tlsRefused(err) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// errSendPanicked is the error of a write whose batch's send panicked:
// it may have reached the server.
var errSendPanicked = fmt.Errorf("%w: the batch failed with a panic", ErrUnknownOutcome)

// popLost says, for a pop whose outcome is unknown, that what the server
// popped for it, if anything, is lost.
func popLost(err error) error {
	if errors.Is(err, ErrUnknownOutcome) {
		return fmt.Errorf("%w (items the server popped for this batch, if any, are lost)", err)
	}
	return err
}

// popResult is what an RPOP key count that was sent once took, and its
// error: none for an empty queue, and for a reply lost after sending, one
// that says what the server popped for it is lost.
func popResult(cmd *redis.StringSliceCmd) ([]string, error) {
	res, err := cmd.Result()
	if err == redis.Nil {
		err = nil // an empty queue
	}
	return res, popLost(sentError(err))
}

// writeContext is the context a batch of writes (or pops) is sent on. On
// a cluster it is ctx without its cancellation: go-redis's cluster
// pipeline, when a node's part fails because ctx ended (no connection
// taken yet), sets ctx's error on every command of the pipeline, those
// that other nodes already ran included, so an item an RPOP took (or a
// push that was stored) would be reported as not taken (not stored). The
// callers of a batch that was sent wait for its reply anyway.
func writeContext(ctx context.Context, cl redis.UniversalClient) context.Context {
	if _, ok := cl.(*redis.ClusterClient); ok {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// batchers are the coalescers of a DataStore.
type batchers struct {
	push *coalescer[pushArg]
	set  *coalescer[setArg]
	get  *coalescer[getArg]
	pop  *coalescer[popArg]
}

func newBatchers(off bool, conn *Connection) batchers {
	return batchers{
		push: newCoalescer(off, false, errSendPanicked, func(ctx context.Context, cl redis.UniversalClient, b []*call[pushArg]) {
			sendPushes(ctx, conn, cl, b)
		}),
		set: newCoalescer(off, false, errSendPanicked, func(ctx context.Context, cl redis.UniversalClient, b []*call[setArg]) {
			sendSets(ctx, conn, cl, b)
		}),
		get: newCoalescer(off, true, errors.New("storagegen: the get's batch failed with a panic"), sendGets),
		pop: newCoalescer(off, false, popLost(errSendPanicked), sendPops),
	}
}

// Pushes: the items of all calls on one queue go in one LPUSH, in call
// order, each call's items together and in its order; pushes to several
// queues share a pipeline.

type pushArg struct {
	key   string
	items []any // encoded payloads ([]byte), oldest first
	one   [1]any
}

func pushKey(a *pushArg) string { return a.key }

// With Options.WaitReplicas, each primary's LPUSHes are followed by one
// WAIT (durability.go).
func sendPushes(ctx context.Context, conn *Connection, cl redis.UniversalClient, batch []*call[pushArg]) {
	ctx = writeContext(ctx, cl)
	var cmd1 [1]redis.Cmder
	var lpush1 [1]*redis.IntCmd
	var key1 [1]string
	cmds, lpush, keys := cmd1[:0], lpush1[:0], key1[:0] // usually one queue
	groupByKey(batch, pushKey)
	runs(batch, pushKey, func(key string, calls []*call[pushArg]) {
		n := 0
		for _, c := range calls {
			n += len(c.arg.items)
		}
		args := make([]any, 2, 2+n)
		args[0], args[1] = "lpush", key
		for _, c := range calls {
			args = append(args, c.arg.items...)
		}
		cmd := redis.NewIntCmd(ctx, args...)
		cmds = append(cmds, onceInt{cmd})
		lpush = append(lpush, cmd)
		keys = append(keys, key)
	})
	werrs := conn.sendWrites(ctx, cl, keys, cmds)
	i := 0
	runs(batch, pushKey, func(_ string, calls []*call[pushArg]) {
		err := sentError(lpush[i].Err())
		if err == nil && werrs != nil {
			err = werrs[i]
		}
		i++
		for _, c := range calls {
			c.err = err
		}
	})
}

// Sets: one SET per call, in one pipeline.

type setArg struct {
	args [5]any // set key value [px ms]
	n    int
}

func sendSets(ctx context.Context, conn *Connection, cl redis.UniversalClient, batch []*call[setArg]) {
	ctx = writeContext(ctx, cl)
	var cmd1 [1]redis.Cmder
	var set1 [1]*redis.StatusCmd
	var key1 [1]string
	cmds, sets, keys := cmd1[:], set1[:], key1[:]
	if len(batch) > 1 {
		cmds, sets, keys = make([]redis.Cmder, len(batch)), make([]*redis.StatusCmd, len(batch)), make([]string, len(batch))
	}
	for i, c := range batch {
		sets[i] = redis.NewStatusCmd(ctx, c.arg.args[:c.arg.n]...)
		cmds[i] = onceStatus{sets[i]}
		keys[i], _ = c.arg.args[1].(string)
	}
	werrs := conn.sendWrites(ctx, cl, keys, cmds)
	for i, c := range batch {
		c.err = sentError(sets[i].Err())
		if c.err == nil && werrs != nil {
			c.err = werrs[i]
		}
	}
}

// Gets: one GET per call, in one pipeline (not MGET, which answers a key of
// another type with nil instead of WRONGTYPE). Reads are left to go-redis's
// retries.

type getArg struct {
	args [2]any // get key
	data []byte
	ok   bool
}

func sendGets(ctx context.Context, cl redis.UniversalClient, batch []*call[getArg]) {
	var cmd1 [1]redis.Cmder
	var get1 [1]*redis.StringCmd
	cmds, gets := cmd1[:], get1[:]
	if len(batch) > 1 {
		cmds, gets = make([]redis.Cmder, len(batch)), make([]*redis.StringCmd, len(batch))
	}
	for i, c := range batch {
		gets[i] = redis.NewStringCmd(ctx, c.arg.args[:]...)
		cmds[i] = gets[i]
	}
	sendBatch(ctx, cl, cmds)
	for i, c := range batch {
		data, err := gets[i].Bytes()
		switch {
		case err == redis.Nil:
		case err != nil:
			c.err = mapErr(err)
		default:
			c.arg.data, c.arg.ok = data, true
		}
	}
}

// Non-blocking pops: the calls on one queue share one RPOP key count,
// whose items (oldest first) are handed out in call order, each call
// taking up to what it asked for.

type popArg struct {
	key   string
	n     int
	items [][]byte
	one   [1][]byte
}

func popKey(a *popArg) string { return a.key }

func sendPops(ctx context.Context, cl redis.UniversalClient, batch []*call[popArg]) {
	ctx = writeContext(ctx, cl)
	var cmd1 [1]redis.Cmder
	var rpop1 [1]*redis.StringSliceCmd
	cmds, rpop := cmd1[:0], rpop1[:0] // usually one queue
	groupByKey(batch, popKey)
	runs(batch, popKey, func(key string, calls []*call[popArg]) {
		n := 0
		for _, c := range calls {
			n += c.arg.n
		}
		cmd := redis.NewStringSliceCmd(ctx, "rpop", key, n)
		cmds = append(cmds, onceStringSlice{cmd})
		rpop = append(rpop, cmd)
	})
	sendBatch(ctx, cl, cmds)
	i := 0
	runs(batch, popKey, func(_ string, calls []*call[popArg]) {
		res, err := popResult(rpop[i])
		i++
		for _, c := range calls {
			c.err = err
			take := min(c.arg.n, len(res))
			if take == 1 && c.arg.n == 1 {
				c.arg.one[0] = []byte(res[0])
				c.arg.items = c.arg.one[:]
			} else if take > 0 {
				c.arg.items = make([][]byte, take)
				for j := range take {
					c.arg.items[j] = []byte(res[j])
				}
			}
			res = res[take:]
		}
	})
}
