package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// At-least-once queues.
//
// A plain BRPOP is at-most-once: between the pop and the end of its work an
// item lives only in the consumer's memory. So an item here is never only
// in memory. A push call stores its items, each under an ID, with one
// script that also records the call's first ID, so a push that go-redis
// retries after a lost reply is stored once (go-redis sends a command
// again when its reply is lost). A take (one run of the receive script)
// leases up to n of the oldest ready items, moving their IDs from the
// ready list to the leases; when nothing is ready, BLMOVE waits and moves
// one ID to the processing list, and a take leases it (with up to n-1
// more). A delivery that is not acked before its lease runs out is
// reclaimed: put back, or made a dead letter after MaxDeliveries.
// Reclaiming is done by Receive itself, at most once per reclaimInterval per
// queue and DataStore, and by Reclaim. Delayed items become ready when they
// are due (see promoteAt). See scripts.go and lua/ for each step.

// MaxIDBytes is the longest ID that PushID accepts.
const MaxIDBytes = 512

const (
	reclaimBatch  = 1000 // items of each kind one reclaim script handles
	maxErrorBytes = 1024 // of a last error kept with an item
	settleTimeout = 10 * time.Second
)

// reliable is the untyped core of a ReliableQueue.
type reliable struct {
	ds            *DataStore
	key           string
	keys          []string // reliableKeys(key)
	paused        string   // pausedKey(key)
	meta          string   // metaKey(key): push times and trace contexts (trace.go)
	lease         time.Duration
	maxDeliveries int
	window        time.Duration
	tel           *declTel // the declaration's metrics; nil records none (telemetry.go)
}

// ReliableQueue is a typed at-least-once queue: every item whose Push
// returned nil is eventually acked or kept as a dead letter. It has no Pop;
// items are received as a *Delivery, which is acked, nacked or left to run
// out its lease. Its zero value is not usable; get one from a generated
// accessor or NewReliableQueue.
type ReliableQueue[T any] struct {
	r   *reliable // shard 0's, for a sharded queue
	key string
	err error     // from building the key or checking the settings
	sh  *shardSet // of a sharded queue (shards.go); nil for one queue
}

// NewReliableQueue returns the at-least-once queue of decl for the
// placeholder values args. Zero settings in decl take their defaults. A bad
// argument is reported by every call on the returned queue.
func NewReliableQueue[T any](ds *DataStore, decl *QueueDecl, args ...any) ReliableQueue[T] {
	name, err := decl.Key.Expand(args...)
	if err == nil {
		err = checkReliable(ds, decl)
	}
	if err != nil {
		return ReliableQueue[T]{key: decl.Key.String(), err: fmt.Errorf("queue %s: %w", decl.Name, err)}
	}
	key := QueueKey(decl.Prefix, name)
	r := &reliable{ds: ds, key: key, keys: reliableKeys(key), paused: pausedKey(key), meta: metaKey(key),
		lease: DefaultLease, maxDeliveries: DefaultMaxDeliveries, window: DefaultDedupeWindow,
		tel: ds.tel.decl(kindReliable, decl.Name)}
	if decl.Lease != 0 {
		r.lease = decl.Lease
	}
	if decl.MaxDeliveries != 0 {
		r.maxDeliveries = decl.MaxDeliveries
	}
	if decl.DedupeWindow != 0 {
		r.window = decl.DedupeWindow
	}
	q := ReliableQueue[T]{r: r, key: key}
	if decl.Shards > 1 {
		q.sh = ds.shardsFor(decl.Prefix, name, decl.Shards, r)
	}
	if r.tel != nil {
		r.tel.noteReliable(key, r, q.sh) // for storagegen.queue.items (gauge.go)
	}
	return q
}

func checkReliable(ds *DataStore, decl *QueueDecl) error {
	switch {
	case ds == nil:
		return fmt.Errorf("%w: nil DataStore", ErrInvalidArgument)
	case decl.Layout != LayoutTagged:
		return fmt.Errorf("%w: an at-least-once queue's keys must share one hash tag for its scripts; layout %v is for at-most-once queues and caches", ErrInvalidArgument, decl.Layout)
	case decl.Lease < 0 || decl.Lease%time.Millisecond != 0:
		return fmt.Errorf("%w: lease %v is not a positive number of milliseconds", ErrInvalidArgument, decl.Lease)
	case decl.MaxDeliveries < 0:
		return fmt.Errorf("%w: max deliveries %d < 1", ErrInvalidArgument, decl.MaxDeliveries)
	case decl.DedupeWindow < 0 || decl.DedupeWindow%time.Millisecond != 0:
		return fmt.Errorf("%w: dedupe window %v is not a positive number of milliseconds", ErrInvalidArgument, decl.DedupeWindow)
	}
	return checkShards(decl.Shards)
}

// Key returns the key of the queue's ready list; its other keys share it
// as a prefix and hash tag. For a sharded queue, it is shard 0's.
func (q ReliableQueue[T]) Key() string { return q.key }

// Push appends v under a new random ID.
func (q ReliableQueue[T]) Push(ctx context.Context, v T) error {
	return q.PushMany(ctx, v)
}

// PushMany appends vs, each under a new random ID, with one script; they
// are received in the order given. If any of them cannot be encoded or is
// too large, nothing is written. A push that go-redis retries after a lost
// reply is stored once.
func (q ReliableQueue[T]) PushMany(ctx context.Context, vs ...T) error {
	ids := make([]string, len(vs))
	for i := range ids {
		ids[i] = rand.Text()
	}
	return q.push(ctx, ids, vs)
}

// PushID appends v under id unless an item with that ID is in the queue
// (ready, in flight, delayed or dead) or was pushed within the queue's
// dedupe window; then it does nothing and returns nil. So an item pushed
// with PushID is delivered once however often it is pushed in the window.
// id is at most MaxIDBytes long.
func (q ReliableQueue[T]) PushID(ctx context.Context, id string, v T) error {
	if q.err == nil && (id == "" || len(id) > MaxIDBytes) {
		return opError("push", q.key, fmt.Errorf("%w: ID of %d bytes; want 1 to %d", ErrInvalidArgument, len(id), MaxIDBytes))
	}
	return q.push(ctx, []string{id}, []T{v})
}

func (q ReliableQueue[T]) push(ctx context.Context, ids []string, vs []T) error {
	if q.err != nil || q.r.tel == nil {
		return q.pushValues(ctx, ids, vs)
	}
	start := time.Now()
	ctx, span := q.r.tel.start(ctx, opPush)
	if len(ids) == 1 {
		spanMessageID(span, ids[0])
	} else {
		spanCount(span, len(ids))
	}
	err := q.pushValues(ctx, ids, vs)
	out := outcomeOf(err, outOK)
	q.r.tel.done(ctx, opPush, out, start, itemsIf(err == nil, len(vs)))
	endSpan(span, out)
	return err
}

func (q ReliableQueue[T]) pushValues(ctx context.Context, ids []string, vs []T) error {
	if q.err != nil {
		return opError("push", q.key, q.err)
	}
	if len(vs) == 0 {
		return nil
	}
	payloads := make([][]byte, len(vs))
	for i, v := range vs {
		b, err := encode(v, q.r.ds.maxPayload)
		if err != nil {
			return opError("push", q.key, fmt.Errorf("item %d: %w", i, err))
		}
		payloads[i] = b
	}
	return q.pushPayloads(ctx, ids, payloads)
}

func (r *reliable) push(ctx context.Context, ids []string, payloads [][]byte) error {
	// The first ID's marker stands for the call (lua/push.lua).
	keys := append(r.keys[:numReliableKeys:numReliableKeys], markerKey(r.key, ids[0]))
	meta := r.tel.metaArg(ctx)
	if meta != "" {
		// The script touches Q:meta only to write it; without a provider
		// the key is not sent (go-redis would allocate for it).
		keys = append(keys, r.meta)
	}
	args := make([]any, 0, 2+2*len(ids))
	args = append(args, r.window.Milliseconds(), meta)
	for i, id := range ids {
		args = append(args, id, payloads[i])
	}
	return r.ds.Connection.call("push", r.key, func(cl redis.UniversalClient) error {
		r.ds.warnEviction(ctx, cl)
		if r.ds.Connection.wait.on() {
			// The fence rewrites the call's marker as it is (XX KEEPTTL): it
			// is replicated even when the script stored nothing (a push sent
			// again with the same first ID), so the WAIT after it also
			// covers the earlier push that stored the items.
			fence := redis.NewStatusCmd(ctx, "set", keys[numReliableKeys], "1", "xx", "keepttl")
			_, err := r.ds.Connection.runDurable(ctx, cl, pushScript, keys, args, onceStatus{fence})
			return err
		}
		return pushScript.run(ctx, r.ds.Connection, cl, keys, args...).Err()
	})
}

// Len returns the number of items ready to be received (Stats.Ready): not
// those in flight, delayed after a Nack, or dead. Stats counts all of them.
func (q ReliableQueue[T]) Len(ctx context.Context) (int64, error) {
	if q.err != nil {
		return 0, opError("len", q.key, q.err)
	}
	if q.sh != nil {
		return q.lenSharded(ctx)
	}
	return q.r.ds.llen(ctx, q.key)
}

// Stats is where a ReliableQueue's items are, as Stats reads them in one
// round trip: one consistent snapshot of the server.
type Stats struct {
	Ready    int64 // waiting to be received (what Len returns)
	InFlight int64 // received and not yet acked or nacked
	Expired  int64 // of InFlight, those whose lease has run out and that no reclaim has put back yet
	Delayed  int64 // nacked with a delay that has not yet made them ready again
	Dead     int64 // dead letters (what Dead().Len returns)
	// OldestReady is how long the oldest ready item (the next to be
	// received) has been in the ready list, to the millisecond by the
	// server's clock; 0 when none is ready. An item that was nacked with a
	// delay counts from when it became ready again, not from its nack.
	OldestReady time.Duration
	// OldestReadyUnknown is true when items are ready but the oldest of
	// them carry no time (entries a plain LPUSH of an older writer put in
	// the ready list): OldestReady is then 0, which does not mean new.
	OldestReadyUnknown bool
	// Paused is whether the queue is paused (Pause): receivers lease
	// nothing until Resume. For a sharded queue, whether any shard is
	// (a Pause or Resume that failed part-way leaves some shards paused;
	// calling it again finishes it).
	Paused bool
}

// Stats counts the queue's items in each state, and the age of the oldest
// ready item, with one read-only script: one round trip, once the server
// has the script (the first call on a server loads it, one more).
func (q ReliableQueue[T]) Stats(ctx context.Context) (Stats, error) {
	if q.err != nil {
		return Stats{}, opError("stats", q.key, q.err)
	}
	if q.sh != nil {
		return q.statsSharded(ctx)
	}
	var res []int64
	err := q.r.ds.Connection.call("stats", q.key, func(cl redis.UniversalClient) (err error) {
		res, err = statsScript.run(ctx, q.r.ds.Connection, cl, q.r.withKey(q.r.paused)).Int64Slice()
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	if len(res) != 7 {
		return Stats{}, opError("stats", q.key, fmt.Errorf("unexpected reply of %d elements from the stats script", len(res)))
	}
	s := Stats{Ready: res[0], InFlight: res[1], Expired: res[2], Delayed: res[3], Dead: res[4], Paused: res[6] == 1}
	if res[5] > 0 {
		s.OldestReady = time.Duration(res[5]) * time.Millisecond
	}
	s.OldestReadyUnknown = res[0] > 0 && res[5] < 0
	return s, nil
}

// Delivery is one delivery of an item of a ReliableQueue. It holds the
// item's lease until Ack, Nack, or the lease running out.
type Delivery[T any] struct {
	Value   T
	ID      string // the item's ID, stable across deliveries
	Attempt int    // 1 on the first delivery

	r        *reliable
	receipt  *receipt    // of the take that leased it
	released atomic.Bool // counted as done for receipt
	settled  atomic.Bool // acked or nacked, or found to have lost its lease
	gone     atomic.Bool // Consume's ack found the item gone already (acked by another delivery)

	// From the item's meta (trace.go), read only when the DataStore has
	// a provider: when it was first pushed (ms of the server's clock; 0
	// when unknown), and the push's span context (invalid when unknown).
	pushed int64
	link   trace.SpanContext
}

// receipt is the receipt of one take (lua/receive.lua), shared by the
// deliveries it leased. It is only of use while go-redis may still send
// the take again; the ack or nack of the last delivery deletes it, and its
// expiry removes it when a delivery is never settled.
type receipt struct {
	key  string
	open atomic.Int32 // deliveries not yet acked or nacked
}

// done counts one delivery of the take as settled, and returns the key
// for the settling script to delete when it was the last, else "".
func (rc *receipt) done() string {
	if rc != nil && rc.open.Add(-1) == 0 {
		return rc.key
	}
	return ""
}

// releaseReceipt counts d as settled for its take's receipt, once, as
// receipt.done does.
func (d *Delivery[T]) releaseReceipt() string {
	if !d.released.CompareAndSwap(false, true) {
		return ""
	}
	return d.receipt.done()
}

// MaxReceiveBatch is the most items one ReceiveMany (and one take of
// Consume) leases.
const MaxReceiveBatch = 100

// Receive takes the oldest ready item and leases it for the queue's lease,
// waiting up to timeout for one as Queue.Pop does (0 does not wait). ok is
// false when nothing came in time. Cancelling ctx ends the wait within
// about a round trip, and an item never goes missing: one that the server
// had already moved is put back at the front.
//
// An item that cannot be decoded into T counts as a failed delivery: it is
// given back (or made a dead letter after MaxDeliveries) and Receive
// returns an error wrapping ErrDecode; so does an entry that was pushed to
// the ready list by something other than a ReliableQueue, which is kept as
// a dead letter at once.
func (q ReliableQueue[T]) Receive(ctx context.Context, timeout time.Duration) (*Delivery[T], bool, error) {
	ds, err := q.receive(ctx, 1, timeout, nil)
	if len(ds) == 0 {
		return nil, false, err
	}
	return ds[0], true, err
}

// ReceiveMany leases up to n (1 to MaxReceiveBatch) of the oldest ready
// items with one script, waiting up to timeout for the first as Receive
// does and taking the rest without waiting; each is a Delivery of its
// own, to ack or nack on its own. Items that cannot be decoded are
// handled as Receive handles one, and the others are returned together
// with an error wrapping ErrDecode.
func (q ReliableQueue[T]) ReceiveMany(ctx context.Context, n int, timeout time.Duration) ([]*Delivery[T], error) {
	if q.err == nil && (n < 1 || n > MaxReceiveBatch) {
		return nil, opError("receive", q.key, fmt.Errorf("%w: count %d; want 1 to %d", ErrInvalidArgument, n, MaxReceiveBatch))
	}
	return q.receive(ctx, n, timeout, nil)
}

func (q ReliableQueue[T]) receive(ctx context.Context, n int, timeout time.Duration, cnt *Counters) ([]*Delivery[T], error) {
	if q.err != nil || q.r.tel == nil {
		return q.receiveValues(ctx, n, timeout, cnt)
	}
	start := time.Now()
	ctx, span := q.r.tel.start(ctx, opReceive)
	ds, err := q.receiveValues(ctx, n, timeout, cnt)
	out := popOutcome(err, len(ds) > 0)
	q.r.tel.done(ctx, opReceive, out, start, len(ds))
	if n == 1 && len(ds) == 1 {
		spanMessageID(span, ds[0].ID)
	} else if n > 1 {
		spanCount(span, len(ds))
	}
	endSpan(span, out)
	return ds, err
}

func (q ReliableQueue[T]) receiveValues(ctx context.Context, n int, timeout time.Duration, cnt *Counters) ([]*Delivery[T], error) {
	if q.err != nil {
		return nil, opError("receive", q.key, q.err)
	}
	ls, err := q.lease(ctx, n, timeout, cnt)
	q.r.ds.Connection.sawError(err)
	if len(ls) == 0 {
		return nil, err
	}
	ds := make([]*Delivery[T], 0, len(ls))
	errs := []error{err}
	for _, l := range ls {
		v, derr := decode[T](l.payload, q.r.ds.maxPayload)
		if derr == nil {
			d := &Delivery[T]{Value: v, ID: l.id, Attempt: l.attempt, r: l.r, receipt: l.receipt}
			if l.meta != "" && l.r.tel != nil {
				d.pushed, d.link = parseMeta(l.meta)
			}
			ds = append(ds, d)
			continue
		}
		sctx, cancel := settleContext(ctx)
		dead, nerr := l.r.nack(sctx, nil, l.receipt.done(), l.id, l.attempt, 0, derr.Error(), cnt)
		cancel()
		next := "it will be delivered again"
		if dead {
			next = fmt.Sprintf("it is now a dead letter (%s)", DeadKey(l.r.key))
		}
		errs = append(errs, opError("receive", l.r.key, fmt.Errorf("item %q, delivery %d: %w; %s", l.id, l.attempt, derr, next)), nerr)
	}
	return ds, errors.Join(errs...)
}

// leased is an item as the receive script hands it out.
type leased struct {
	id      string
	payload []byte
	attempt int
	meta    string    // the item's field of the meta hash, or ""
	receipt *receipt  // of the take that leased it
	r       *reliable // of the queue (the shard) it is on
}

// receive leases up to n items, waiting up to timeout for the first. An
// error that comes with items concerns entries that no reliable queue
// pushed, now dead letters.
func (r *reliable) receive(ctx context.Context, n int, timeout time.Duration, cnt *Counters) ([]leased, error) {
	if timeout < 0 {
		return nil, opError("receive", r.key, fmt.Errorf("%w: negative timeout %v", ErrInvalidArgument, timeout))
	}
	cl, release, err := r.ds.Connection.acquire()
	if err != nil {
		return nil, opError("receive", r.key, err)
	}
	defer release()
	r.ds.warnEviction(ctx, cl)

	fail := func(err error) ([]leased, error) {
		if ctx.Err() == nil && r.ds.Connection.closing.Err() != nil {
			err = ErrClosed
		}
		return nil, opError("receive", r.key, mapErr(err))
	}
	deadline := time.Now().Add(timeout)
	// Each run of the receive script (each take) records what it leased
	// under a token of its own, so that when go-redis sends that script
	// again after losing its reply, the same deliveries come back and no
	// other is counted. A token per take, not per Receive: a receipt whose
	// deliveries were reclaimed meanwhile must not stop the next take.
	newReceipt := func() string { return receiptKey(r.key, rand.Text()) }
	// The dedicated connection for BLMOVE is taken when the first wait
	// begins and kept for every slice of this Receive.
	var bc *blockConn
	defer func() {
		if bc != nil {
			r.ds.Connection.putBlockConn(bc)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := r.maybeReclaim(ctx, cl, cnt); err != nil {
			return fail(err)
		}
		receipt := newReceipt()
		ls, due, foreign, err := r.take(ctx, cl, receipt, "", n)
		if err != nil {
			// The script may have run with its reply lost for good (the
			// context ended, the server stalled past every retry, or the
			// last retry met a server error such as LOADING): undo the
			// deliveries it may have counted, by its receipt.
			sctx, cancel := settleContext(ctx)
			err = errors.Join(err, r.release(sctx, cl, receipt, ""))
			cancel()
		}
		if len(ls) > 0 || err != nil || foreign != nil {
			return ls, errors.Join(err, foreign)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, nil
		}
		if due == duePaused {
			// Paused: wait without BLMOVE, which would move an item, and
			// look again after a while (reclaiming meanwhile, as a wait
			// does).
			if err := r.ds.Connection.pause(ctx, min(wait, r.pauseRecheck())); err != nil {
				return fail(err)
			}
			continue
		}
		// Wait in slices, so that expired items are put back while a
		// Receive waits and nothing else reclaims, and wake when the next
		// delayed item is due: the receive script then makes it ready and
		// leases it, within a few ms of its due time.
		slice := min(wait, r.reclaimInterval())
		if due >= 0 {
			slice = min(slice, due+time.Millisecond)
		}
		wctx, stop := r.ds.Connection.untilClose(ctx)
		if bc == nil {
			if bc, err = r.ds.Connection.getBlockConn(wctx, r.key, deadline); err != nil {
				stop()
				return fail(err)
			}
		}
		item, ok, err := r.ds.Connection.blmove(wctx, bc, r.keys[keyReady], r.keys[keyProcessing], slice)
		stop()
		if err != nil {
			return fail(err)
		}
		if !ok {
			continue
		}
		// The item is in processing without a lease: finish the step even
		// if ctx has ended, or give the item back. (If this process dies
		// here, reclaim gives the item a lease, and then it comes back.)
		id := string(item)
		sctx, cancel := settleContext(ctx)
		receipt = newReceipt()
		if ctx.Err() != nil {
			err := r.release(sctx, cl, receipt, id)
			cancel()
			return fail(errors.Join(ctx.Err(), err))
		}
		ls, due, foreign, err = r.take(sctx, cl, receipt, id, n)
		switch {
		case err != nil:
			err = errors.Join(err, r.release(sctx, cl, receipt, id))
		case due == duePaused:
			// Paused while BLMOVE waited: the take leased nothing, and
			// the item goes back to the front of the queue, uncounted.
			err = r.release(sctx, cl, receipt, id)
		}
		cancel()
		if len(ls) > 0 || err != nil || foreign != nil {
			return ls, errors.Join(err, foreign)
		}
		// A reclaim put the item back in the meantime, or the queue is
		// paused: look again.
	}
}

// receiptTTL is how long a take's receipt lives: the lease, plus the time
// go-redis may take to send the call again after losing its reply, so
// that a late retry still finds it.
func (r *reliable) receiptTTL() time.Duration { return r.lease + r.ds.Connection.retryWindow() }

// release gives back what the take with receipt took but never handed
// out: the item BLMOVE moved (id), or the deliveries its receipt records,
// and makes sure a late run of the take takes nothing. It is one call,
// which go-redis retries as it does any, under ctx (a settle context), so
// a server that stalled gets go-redis's retry window to come back, and a
// cut network costs the caller no more than any call does. It reports
// only errors, not whether there was anything.
func (r *reliable) release(ctx context.Context, cl redis.UniversalClient, receipt, id string) error {
	if err := releaseScript.run(ctx, r.ds.Connection, cl, r.withReceipt(receipt), id, r.receiptTTL().Milliseconds()).Err(); err != nil {
		return opError("release", r.key, mapErr(err))
	}
	return nil
}

// duePaused is take's due for a paused queue.
const duePaused time.Duration = -2

// take runs the receive script once, with its own receipt key: for id ""
// on up to n of the oldest ready items (after making due delayed items
// ready), or for an item BLMOVE has moved and up to n-1 more. When it
// leases nothing, due is how long until the next delayed item is due, or
// -1 when none is delayed (always -1 for an id), or duePaused when the
// queue is paused (then it changed nothing, and an id is still where
// BLMOVE put it, for release to give back). foreign, if not nil,
// wraps ErrDecode for entries that no reliable queue pushed, now dead
// letters; err is the script's failure.
func (r *reliable) take(ctx context.Context, cl redis.UniversalClient, receiptKey, id string, n int) (ls []leased, due time.Duration, foreign, err error) {
	keys := append(r.withReceipt(receiptKey), r.paused)
	if r.tel != nil {
		// Q:meta is read for the end-to-end time and the link, which only
		// a DataStore with a provider records: without one, the key is
		// not sent, and the script reads none and replies without it
		// (go-redis allocates for every element of a reply).
		keys = append(keys, r.meta)
	}
	res, err := receiveScript.run(ctx, r.ds.Connection, cl, keys, r.lease.Milliseconds(), id, reclaimBatch, r.receiptTTL().Milliseconds(), n).Slice()
	if err != nil {
		return nil, -1, nil, opError("receive", r.key, mapErr(err))
	}
	bad := func() ([]leased, time.Duration, error, error) {
		return nil, -1, nil, opError("receive", r.key, fmt.Errorf("unexpected reply of %d elements from the receive script", len(res)))
	}
	width := 3 // id, payload, attempt; and the meta when the script read it
	if r.tel != nil {
		width = 4
	}
	if len(res) < 2 || (len(res)-2)%width != 0 || (len(res)-2)/width > n {
		return bad()
	}
	ms, ok1 := res[0].(int64)
	dead, ok2 := res[1].([]any)
	if !ok1 || !ok2 {
		return bad()
	}
	due = -1
	switch {
	case ms >= 0:
		due = time.Duration(ms) * time.Millisecond
	case ms == -2:
		if len(res) != 2 {
			return bad()
		}
		return nil, duePaused, nil, nil
	}
	ls = make([]leased, 0, (len(res)-2)/width)
	rc := &receipt{key: receiptKey}
	rc.open.Store(int32((len(res) - 2) / width))
	for i := 2; i+width <= len(res); i += width {
		id, ok1 := res[i].(string)
		payload, ok2 := res[i+1].(string)
		attempt, ok3 := res[i+2].(int64)
		meta, ok4 := "", true
		if width == 4 {
			meta, ok4 = res[i+3].(string)
		}
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return bad()
		}
		ls = append(ls, leased{id: id, payload: []byte(payload), attempt: int(attempt), meta: meta, receipt: rc, r: r})
	}
	if len(dead) > 0 {
		names := make([]string, len(dead))
		for i, f := range dead {
			names[i], _ = f.(string)
		}
		foreign = opError("receive", r.key, fmt.Errorf("%w: %d entries not pushed by a reliable queue are now dead letters %q", ErrDecode, len(names), names))
		r.tel.count(ctx, opDeadLetter, int64(len(dead)))
	}
	return ls, due, foreign, nil
}

// withReceipt returns the queue's keys followed by receipt, as the
// receive, ack and nack scripts take them.
func (r *reliable) withReceipt(receipt string) []string { return r.withKey(receipt) }

// withKey returns the queue's keys followed by key.
func (r *reliable) withKey(key string) []string {
	return append(r.keys[:numReliableKeys:numReliableKeys], key)
}

// reclaimInterval is how often Receive reclaims: often enough that an
// expired lease or a due delayed item waits at most about a second.
func (r *reliable) reclaimInterval() time.Duration { return min(r.lease/2, time.Second) }

// maybeReclaim reclaims unless this DataStore did so for the queue within
// reclaimInterval.
func (r *reliable) maybeReclaim(ctx context.Context, cl redis.UniversalClient, cnt *Counters) error {
	v, ok := r.ds.reclaimed.Load(r.key)
	if !ok {
		v, _ = r.ds.reclaimed.LoadOrStore(r.key, new(atomic.Int64))
	}
	last := v.(*atomic.Int64)
	prev, now := last.Load(), time.Now().UnixNano()
	if now-prev < int64(r.reclaimInterval()) || !last.CompareAndSwap(prev, now) {
		return nil
	}
	_, err := r.reclaimOnce(ctx, cl, cnt)
	if err != nil {
		last.CompareAndSwap(now, prev) // let the next Receive try again
	}
	return err
}

// reclaimOnce runs the reclaim script once and returns how many expired
// leases it handled.
func (r *reliable) reclaimOnce(ctx context.Context, cl redis.UniversalClient, cnt *Counters) (int, error) {
	res, err := reclaimScript.run(ctx, r.ds.Connection, cl, r.withKey(r.meta), r.lease.Milliseconds(), r.maxDeliveries, reclaimBatch, metaSweep).Int64Slice()
	if err != nil {
		return 0, err
	}
	if len(res) != 3 {
		return 0, fmt.Errorf("unexpected reply of %d elements from the reclaim script", len(res))
	}
	cnt.add(reclaimed, res[0]+res[1])
	cnt.add(deadLettered, res[1])
	r.tel.count(ctx, opReclaim, res[0]+res[1])
	r.tel.count(ctx, opDeadLetter, res[1])
	return int(res[0] + res[1]), nil
}

// Reclaim puts back every item whose lease has run out (or makes it a dead
// letter after MaxDeliveries), makes due delayed items ready, and leases
// items a stopped consumer left in processing without one. It returns how
// many expired leases it handled. Receive and Consume do this by
// themselves about once a second; Reclaim is for tools and tests.
func (q ReliableQueue[T]) Reclaim(ctx context.Context) (int, error) {
	if q.err != nil || q.r.tel == nil {
		return q.reclaim(ctx)
	}
	start := time.Now()
	n, err := q.reclaim(ctx)
	// The items are counted where each script ran (reclaimOnce).
	q.r.tel.done(ctx, opReclaim, outcomeOf(err, outOK), start, 0)
	return n, err
}

func (q ReliableQueue[T]) reclaim(ctx context.Context) (int, error) {
	if q.err != nil {
		return 0, opError("reclaim", q.key, q.err)
	}
	if q.sh != nil {
		return q.reclaimSharded(ctx)
	}
	total := 0
	err := q.r.ds.Connection.call("reclaim", q.key, func(cl redis.UniversalClient) error {
		for range 1000 { // at most a million items per call
			n, err := q.r.reclaimOnce(ctx, cl, nil)
			total += n
			if err != nil || n < reclaimBatch {
				return err
			}
		}
		return nil
	})
	return total, err
}

// Ack marks the item done: it is removed for good. It returns an error
// wrapping ErrLeaseLost if the item is still in the queue but the delivery
// no longer holds it; the item is then delivered again, or already was. An
// item that is gone already (acked by a later delivery, or by this Ack
// when go-redis sent it again after a lost reply) is not an error.
func (d *Delivery[T]) Ack(ctx context.Context) error {
	if d.r == nil || d.r.tel == nil {
		_, err := d.ack(ctx)
		return err
	}
	sctx, span, start := d.r.tel.startSettle(ctx, opAck, d.ID)
	removed, err := d.ack(sctx)
	d.r.tel.settle(sctx, span, opAck, err, start, pushedIf(removed, d.pushed))
	return err
}

// ack acks d; removed reports whether this ack removed the item (not one
// that was gone already: another delivery acked it).
func (d *Delivery[T]) ack(ctx context.Context) (removed bool, err error) {
	if d.settled.Load() {
		return false, d.r.lost("ack", d.ID, d.Attempt)
	}
	res, err := d.r.ack(ctx, []held{d.settling()})
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return false, err
	}
	d.settled.Store(true)
	if res[0] == 0 {
		return false, d.r.lost("ack", d.ID, d.Attempt)
	}
	return res[0] == ackRemoved, err // nil, or the ack ran and is not known to be replicated
}

// ackRemoved is the ack script's reply for an item it removed (2: gone
// already; 0: no longer held).
const ackRemoved = 1

// pushedIf is pushed when an ack removed the item, else 0: an item has one
// end-to-end time, recorded by the ack that removed it, not by a late ack
// of an earlier delivery that finds it gone.
func pushedIf(removed bool, pushed int64) int64 {
	if removed {
		return pushed
	}
	return 0
}

// Nack gives the item back after a failed delivery: it is ready again
// after delay (0: at once, at the back of the queue), or becomes a dead
// letter if this was delivery MaxDeliveries. It returns an error wrapping
// ErrLeaseLost if the delivery no longer holds the item.
func (d *Delivery[T]) Nack(ctx context.Context, delay time.Duration) error {
	if delay < 0 {
		return opError("nack", d.r.key, fmt.Errorf("%w: negative delay %v", ErrInvalidArgument, delay))
	}
	if d.r.tel == nil {
		_, err := d.r.nack(ctx, &d.settled, d.releaseReceipt(), d.ID, d.Attempt, delay, "nacked by the consumer", nil)
		return err
	}
	sctx, span, start := d.r.tel.startSettle(ctx, opNack, d.ID)
	_, err := d.r.nack(sctx, &d.settled, d.releaseReceipt(), d.ID, d.Attempt, delay, "nacked by the consumer", nil)
	d.r.tel.settle(sctx, span, opNack, err, start, 0)
	return err
}

// Extend makes the lease end lease from now, by the server's clock. It
// returns an error wrapping ErrLeaseLost if the delivery no longer holds
// the item.
func (d *Delivery[T]) Extend(ctx context.Context, lease time.Duration) error {
	if lease <= 0 {
		return opError("extend", d.r.key, fmt.Errorf("%w: lease %v must be positive", ErrInvalidArgument, lease))
	}
	if d.settled.Load() {
		return opError("extend", d.r.key, fmt.Errorf("%w: delivery %d of %q was settled", ErrLeaseLost, d.Attempt, d.ID))
	}
	res, err := d.r.extend(ctx, lease, []held{d.held()})
	if err != nil {
		return err
	}
	if res[0] == 0 {
		return d.r.lost("extend", d.ID, d.Attempt)
	}
	return nil
}

// held is what the ack and extend scripts need of one delivery.
type held struct {
	id      string
	attempt int
	receipt string // for ack: the receipt key to delete, or ""
}

func (d *Delivery[T]) held() held { return held{id: d.ID, attempt: d.Attempt} }

// settling is held for an ack, which deletes the take's receipt if d is
// its last delivery out.
func (d *Delivery[T]) settling() held {
	return held{id: d.ID, attempt: d.Attempt, receipt: d.releaseReceipt()}
}

// lost is the error for a delivery that no longer holds its item.
func (r *reliable) lost(op, id string, attempt int) error {
	return opError(op, r.key, fmt.Errorf("%w: delivery %d of %q", ErrLeaseLost, attempt, id))
}

// ack runs the ack script on up to MaxReceiveBatch deliveries and returns
// its reply for each: 1 acked, 2 gone already, 0 no longer held.
func (r *reliable) ack(ctx context.Context, hs []held) ([]int64, error) {
	keys := r.withKey(r.meta)
	args := make([]any, 0, 2*len(hs))
	for _, h := range hs {
		if h.receipt != "" {
			keys = append(keys, h.receipt)
		}
		args = append(args, h.id, h.attempt)
	}
	return r.batch(ctx, "ack", ackScript, keys, args, len(hs))
}

// extend runs the extend script on up to MaxReceiveBatch deliveries and
// returns its reply for each: 1 extended, 0 no longer held.
func (r *reliable) extend(ctx context.Context, lease time.Duration, hs []held) ([]int64, error) {
	args := make([]any, 0, 1+2*len(hs))
	args = append(args, max(lease.Milliseconds(), 1))
	for _, h := range hs {
		args = append(args, h.id, h.attempt)
	}
	return r.batch(ctx, "extend", extendScript, r.keys, args, len(hs))
}

// batch runs a script that answers one number per delivery, n of them.
func (r *reliable) batch(ctx context.Context, op string, s *script, keys []string, args []any, n int) ([]int64, error) {
	var res []int64
	err := r.ds.Connection.call(op, r.key, func(cl redis.UniversalClient) (err error) {
		var cmd *redis.Cmd
		var notReplicated error
		if s == ackScript {
			cmd, notReplicated = r.ds.Connection.runSettling(ctx, cl, s, keys, args)
		} else {
			cmd = s.run(ctx, r.ds.Connection, cl, keys, args...)
		}
		if res, err = cmd.Int64Slice(); err == nil {
			err = notReplicated
		}
		return err
	})
	if (err == nil || errors.Is(err, ErrNotReplicated)) && len(res) != n {
		err = opError(op, r.key, fmt.Errorf("unexpected reply of %d elements from the %s script for %d deliveries", len(res), s.name, n))
	}
	return res, err
}

// nack gives an item back after the failure cause, deleting receipt (the
// key of the take that leased it, when this is its last delivery out,
// else ""), and counting in cnt; it reports whether the item became a
// dead letter. A reply of 0 (the delivery no longer holds the item) is
// ErrLeaseLost. settled, if not nil, is checked before anything is sent,
// and set once the server has answered either way.
func (r *reliable) nack(ctx context.Context, settled *atomic.Bool, receipt, id string, attempt int, delay time.Duration, cause string, cnt *Counters) (dead bool, err error) {
	if settled != nil && settled.Load() {
		return false, r.lost("nack", id, attempt)
	}
	keys := r.keys
	if receipt != "" {
		keys = r.withReceipt(receipt)
	}
	var n int64
	err = r.ds.Connection.call("nack", r.key, func(cl redis.UniversalClient) (err error) {
		args := []any{id, attempt, delay.Milliseconds(), r.maxDeliveries, truncate(cause, maxErrorBytes)}
		cmd, notReplicated := r.ds.Connection.runSettling(ctx, cl, nackScript, keys, args)
		if n, err = cmd.Int64(); err == nil {
			err = notReplicated
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return false, err
	}
	if settled != nil {
		settled.Store(true)
	}
	if n == 0 {
		return false, r.lost("nack", id, attempt)
	}
	cnt.add(nacked, 1)
	if n == 2 {
		cnt.add(deadLettered, 1)
		r.tel.count(ctx, opDeadLetter, 1)
	}
	if n == 1 && delay.Milliseconds() > 0 {
		r.promoteAt(time.Now().Add(delay))
	}
	return n == 2, err // nil, or the nack ran and is not known to be replicated
}

// promoter makes one queue's delayed items ready when they are due, on
// behalf of the DataStore that delayed them. A receiver that is already
// blocked in BLMOVE learns of a new delayed item only when something is
// pushed to the ready list; without the promoter it would wait for its
// next reclaim, up to a second late. The promoter's push is what wakes it.
// One timer per queue and DataStore, set for the earliest due time it
// knows of.
type promoter struct {
	mu    sync.Mutex
	timer *time.Timer
	at    time.Time // when timer fires; zero when no timer is set
}

// promoteAt makes sure the promote script runs for r's queue at due, or
// earlier.
func (r *reliable) promoteAt(due time.Time) {
	v, ok := r.ds.promoters.Load(r.key)
	if !ok {
		v, _ = r.ds.promoters.LoadOrStore(r.key, new(promoter))
	}
	p := v.(*promoter)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && !due.Before(p.at) {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.at = due
	p.timer = time.AfterFunc(max(time.Until(due), 0), func() { r.promote(p) })
}

// promote runs the promote script once, and sets the timer again for the
// next delayed item, if any. After an error (the server is away, or the
// DataStore closed) it stops: receivers' reclaims make the items ready then.
func (r *reliable) promote(p *promoter) {
	p.mu.Lock()
	p.at = time.Time{}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var res []int64
	err := r.ds.Connection.call("promote", r.key, func(cl redis.UniversalClient) (err error) {
		res, err = promoteScript.run(ctx, r.ds.Connection, cl, r.keys, reclaimBatch).Int64Slice()
		return err
	})
	if err != nil || len(res) != 2 || res[1] < 0 {
		return
	}
	r.promoteAt(time.Now().Add(max(time.Duration(res[1])*time.Millisecond, time.Millisecond)))
}

// stopPromoters stops the timers of every queue, for DataStore.Close.
func (ds *DataStore) stopPromoters() {
	ds.promoters.Range(func(_, v any) bool {
		p := v.(*promoter)
		p.mu.Lock()
		if p.timer != nil {
			p.timer.Stop()
		}
		p.mu.Unlock()
		return true
	})
}

// settleContext is for steps that must finish although ctx has ended: it
// keeps ctx's values but not its cancellation, and allows settleTimeout.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// truncate shortens s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Dead returns the queue's dead letters.
func (q ReliableQueue[T]) Dead() DeadLetters[T] { return DeadLetters[T]{q: q} }

// DeadLetters are the items of a ReliableQueue that failed MaxDeliveries
// times, could not be decoded, or were not pushed by a ReliableQueue, kept
// with their last error in a sorted set at Key()+":dead", oldest first.
type DeadLetters[T any] struct{ q ReliableQueue[T] }

// DeadLetter is one dead letter as Peek returns it.
type DeadLetter[T any] struct {
	ID        string
	Value     T      // the zero value when the payload does not decode
	Payload   []byte // the payload as stored (JSON, unless it was never valid)
	DecodeErr error  // why Payload does not decode into T, or nil
	Attempts  int    // deliveries it had
	LastError string // the handler's error, a decode error, or "lease ran out …"
	Time      time.Time
}

// Len returns the number of dead letters.
func (dl DeadLetters[T]) Len(ctx context.Context) (n int64, err error) {
	q := dl.q
	if q.err != nil {
		return 0, opError("dead", q.key, q.err)
	}
	if q.sh != nil {
		return dl.lenSharded(ctx)
	}
	err = q.r.ds.Connection.call("dead", q.key, func(cl redis.UniversalClient) (err error) {
		n, err = cl.ZCard(ctx, q.r.keys[keyDead]).Result()
		return err
	})
	return n, err
}

// Peek returns up to n of the oldest dead letters without changing them.
func (dl DeadLetters[T]) Peek(ctx context.Context, n int) ([]DeadLetter[T], error) {
	q := dl.q
	if q.err != nil {
		return nil, opError("dead", q.key, q.err)
	}
	if n < 1 {
		return nil, opError("dead", q.key, fmt.Errorf("%w: count %d < 1", ErrInvalidArgument, n))
	}
	if q.sh != nil {
		return dl.peekSharded(ctx, n)
	}
	var res []string
	err := q.r.ds.Connection.call("dead", q.key, func(cl redis.UniversalClient) (err error) {
		res, err = peekScript.run(ctx, q.r.ds.Connection, cl, q.r.keys, n).StringSlice()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter[T], 0, len(res)/5)
	for i := 0; i+4 < len(res); i += 5 {
		d := DeadLetter[T]{ID: res[i], Payload: []byte(res[i+2]), LastError: res[i+4]}
		ms, _ := strconv.ParseInt(res[i+1], 10, 64)
		d.Time = time.UnixMilli(ms)
		d.Attempts, _ = strconv.Atoi(res[i+3])
		d.Value, d.DecodeErr = decode[T](d.Payload, q.r.ds.maxPayload)
		out = append(out, d)
	}
	return out, nil
}

// Requeue moves up to n of the oldest dead letters back to the queue, with
// their delivery count reset, and returns how many it moved.
func (dl DeadLetters[T]) Requeue(ctx context.Context, n int) (int, error) {
	if n < 1 {
		return 0, opError("requeue", dl.q.key, fmt.Errorf("%w: count %d < 1", ErrInvalidArgument, n))
	}
	if dl.q.err == nil && dl.q.sh != nil {
		return dl.requeueSharded(ctx, n)
	}
	return dl.batches(ctx, "requeue", requeueScript, n)
}

// Purge deletes the dead letters, up to ten million in one call (call it
// again for more), and returns how many it deleted.
func (dl DeadLetters[T]) Purge(ctx context.Context) (int, error) {
	if dl.q.err == nil && dl.q.sh != nil {
		return dl.purgeSharded(ctx)
	}
	return dl.batches(ctx, "purge", purgeScript, -1)
}

// batches runs s on up to n dead letters (all when n < 0), reclaimBatch at
// a time, so that no script blocks the server for long.
func (dl DeadLetters[T]) batches(ctx context.Context, op string, s *script, n int) (int, error) {
	q := dl.q
	if q.err != nil {
		return 0, opError(op, q.key, q.err)
	}
	total := 0
	err := q.r.ds.Connection.call(op, q.key, func(cl redis.UniversalClient) error {
		for range 10_000 { // ten million dead letters at most per call
			if n >= 0 && total >= n {
				return nil
			}
			batch := reclaimBatch
			if n >= 0 {
				batch = min(batch, n-total)
			}
			keys := q.r.keys
			if s == purgeScript {
				keys = q.r.withKey(q.r.meta)
			}
			got, err := s.run(ctx, q.r.ds.Connection, cl, keys, batch).Int()
			total += got
			if err != nil || got < batch {
				return err
			}
		}
		return nil
	})
	return total, err
}
