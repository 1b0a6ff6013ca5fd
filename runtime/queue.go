package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// Queues are Redis lists: LPUSH at the head, pop at the tail, so items come
// out in the order they went in, for any number of producer and consumer
// processes. Pop is at-most-once: an item lives only in the consumer's
// memory between Pop and the end of its work, and a consumer that dies
// there loses it.

// QueueDecl describes one queue of a schema. Generated code declares one
// per queue.
type QueueDecl struct {
	Name   string      // the schema's name, for errors
	Prefix string      // the schema's prefix
	Key    *KeyPattern // the key pattern
	// Layout is how the pattern's values become the key: LayoutTagged
	// (the zero value) or LayoutPlain, which only an unsharded
	// at-most-once queue may have.
	Layout Layout

	// The settings of an at-least-once queue (NewReliableQueue); zero
	// means the default. At-most-once queues ignore them.
	Lease         time.Duration // how long a delivery holds its item; DefaultLease
	MaxDeliveries int           // deliveries before an item is dead; DefaultMaxDeliveries
	DedupeWindow  time.Duration // how long a pushed ID is remembered; DefaultDedupeWindow

	// Shards spreads the queue over that many lists, each with its own
	// hash tag (see the README's "Sharded queues"); 0 and 1 mean one, the
	// queue's own key.
	Shards int
}

// Queue is a typed at-most-once queue. Its zero value is not usable; get
// one from a generated accessor or NewQueue.
type Queue[T any] struct {
	ds  *DataStore
	key string
	err error     // from building the key; returned by every call
	sh  *shardSet // of a sharded queue (shards.go); nil for one list
	tel *declTel  // the declaration's metrics; nil records none (telemetry.go)
}

// NewQueue returns the queue of decl for the placeholder values args.
// A bad argument (an empty string, say) is reported by every call on the
// returned queue.
func NewQueue[T any](ds *DataStore, decl *QueueDecl, args ...any) Queue[T] {
	name, err := decl.Key.ExpandLayout(decl.Layout, args...)
	if err == nil && ds == nil {
		err = fmt.Errorf("%w: nil DataStore", ErrInvalidArgument)
	}
	if err == nil {
		err = checkShards(decl.Shards)
	}
	if err == nil && decl.Layout == LayoutPlain && decl.Shards > 1 {
		err = fmt.Errorf("%w: a plain queue cannot have shards (each shard's key has a hash tag of its own)", ErrInvalidArgument)
	}
	if err != nil {
		return Queue[T]{ds: ds, key: decl.Key.String(), err: fmt.Errorf("queue %s: %w", decl.Name, err)}
	}
	q := Queue[T]{ds: ds, key: keyspace.QueueKeyOf(decl.Layout, decl.Prefix, name), tel: ds.tel.decl(kindQueue, decl.Name)}
	if decl.Shards > 1 {
		q.sh = ds.shardsFor(decl.Prefix, name, decl.Shards, nil)
	}
	if q.tel != nil {
		q.tel.noteQueue(q.key, q.sh) // for storagegen.queue.items (gauge.go)
	}
	return q
}

// Key returns the queue's Redis key; for a sharded queue, shard 0's.
func (q Queue[T]) Key() string { return q.key }

// Push appends v to the queue. It returns nil once v is stored, once. If
// ctx ends before the push is sent, it returns ctx's error and nothing is
// stored; once sent, it waits for the reply. An error wrapping
// ErrUnknownOutcome means the reply was lost: v was stored once or not at
// all (a push is never sent twice). An error wrapping ErrNotReplicated
// (Options.WaitReplicas) means v was stored on the primary and fewer
// replicas acknowledged it in time. Any other error means nothing was
// stored.
func (q Queue[T]) Push(ctx context.Context, v T) error {
	return q.PushMany(ctx, v)
}

// PushMany appends vs with one LPUSH; they are popped in the order given.
// If any of them cannot be encoded or is too large, nothing is written.
// Concurrent pushes may share the LPUSH (see the README's "Coalescing");
// vs stay together and in order.
func (q Queue[T]) PushMany(ctx context.Context, vs ...T) error {
	if q.tel == nil {
		return q.pushMany(ctx, vs)
	}
	start := time.Now()
	ctx, span := q.tel.start(ctx, opPush)
	if len(vs) != 1 {
		spanCount(span, len(vs))
	}
	err := q.pushMany(ctx, vs)
	out := outcomeOf(err, outOK)
	q.tel.done(ctx, opPush, out, start, itemsIf(err == nil, len(vs)))
	endSpan(span, out)
	return err
}

func (q Queue[T]) pushMany(ctx context.Context, vs []T) error {
	if q.err != nil {
		return opError("push", q.key, q.err)
	}
	if q.sh != nil {
		return q.pushSharded(ctx, vs)
	}
	c := q.ds.batch.push.get()
	items := c.arg.one[:]
	if len(vs) != 1 {
		items = make([]any, len(vs))
	}
	for i, v := range vs {
		b, err := encode(v, q.ds.maxPayload)
		if err != nil {
			q.ds.batch.push.put(c)
			return opError("push", q.key, fmt.Errorf("item %d: %w", i, err))
		}
		items[i] = b
	}
	c.arg.key, c.arg.items = q.key, items
	return q.ds.push(ctx, c)
}

// Pop removes and returns the oldest item, waiting up to timeout for one:
// timeout > 0 waits up to exactly that long, 0 returns at once, < 0 is an
// error. ok is false when nothing came in time. It first takes what is
// there (an RPOP that concurrent pops of the queue share) and waits on a
// blocking connection only when the queue is empty. Cancelling ctx ends
// the wait within about a round trip with ctx.Err(), and never loses an
// item: an item taken for a cancelled Pop is returned.
// An item that cannot be decoded is moved to the dead letters (Key()+":dead")
// and Pop returns an error wrapping ErrDecode.
func (q Queue[T]) Pop(ctx context.Context, timeout time.Duration) (v T, ok bool, err error) {
	if q.tel == nil {
		return q.pop1(ctx, timeout)
	}
	start := time.Now()
	ctx, span := q.tel.start(ctx, opPop)
	v, ok, err = q.pop1(ctx, timeout)
	out := popOutcome(err, ok)
	q.tel.done(ctx, opPop, out, start, itemsIf(ok, 1))
	endSpan(span, out)
	return v, ok, err
}

func (q Queue[T]) pop1(ctx context.Context, timeout time.Duration) (v T, ok bool, err error) {
	if q.err != nil {
		return v, false, opError("pop", q.key, q.err)
	}
	n, err := q.pop(ctx, 1, timeout, func(item []byte) (err error) {
		v, err = decode[T](item, q.ds.maxPayload)
		return err
	})
	return v, n == 1, err
}

// PopMany removes and returns up to n items, oldest first, waiting up to
// timeout for the first as Pop does and taking the rest without waiting.
// Items that cannot be decoded are moved to the dead letters; the others
// are returned together with an error wrapping ErrDecode.
func (q Queue[T]) PopMany(ctx context.Context, n int, timeout time.Duration) ([]T, error) {
	if q.tel == nil {
		return q.popMany(ctx, n, timeout)
	}
	start := time.Now()
	ctx, span := q.tel.start(ctx, opPop)
	vs, err := q.popMany(ctx, n, timeout)
	out := popOutcome(err, len(vs) > 0)
	q.tel.done(ctx, opPop, out, start, len(vs))
	spanCount(span, len(vs))
	endSpan(span, out)
	return vs, err
}

func (q Queue[T]) popMany(ctx context.Context, n int, timeout time.Duration) ([]T, error) {
	if q.err != nil {
		return nil, opError("pop", q.key, q.err)
	}
	var vs []T
	_, err := q.pop(ctx, n, timeout, func(item []byte) error {
		v, err := decode[T](item, q.ds.maxPayload)
		if err == nil {
			vs = append(vs, v)
		}
		return err
	})
	return vs, err
}

// Len returns the number of items in the queue.
func (q Queue[T]) Len(ctx context.Context) (int64, error) {
	if q.err != nil {
		return 0, opError("len", q.key, q.err)
	}
	if q.sh != nil {
		return q.lenSharded(ctx)
	}
	return q.ds.llen(ctx, q.key)
}

// QueueStore is the untyped queue API, as the engine's Python QueueStore
// has it: queues by name, payloads as any JSON-encodable value. The name
// is used as given (no escaping); it may not contain { } * ? [ ] \ or
// control bytes.
type QueueStore struct{ ds *DataStore }

// Push appends v to the queue called name.
func (s *QueueStore) Push(ctx context.Context, name string, v any) error {
	key := QueueKey(s.ds.prefix, name)
	if err := checkName(name); err != nil {
		return opError("push", key, err)
	}
	b, err := encode(v, s.ds.maxPayload)
	if err != nil {
		return opError("push", key, err)
	}
	c := s.ds.batch.push.get()
	c.arg.one[0] = b
	c.arg.key, c.arg.items = key, c.arg.one[:]
	return s.ds.push(ctx, c)
}

// Pop removes the oldest item of the queue called name, waiting as
// Queue.Pop does, and decodes it into a fresh value stored in *dst. ok is
// false when nothing came in time. An item that cannot be decoded into dst
// is moved to the dead letters and Pop returns an error wrapping ErrDecode.
func (s *QueueStore) Pop(ctx context.Context, name string, timeout time.Duration, dst any) (ok bool, err error) {
	key := QueueKey(s.ds.prefix, name)
	if err := errors.Join(checkName(name), checkTarget(dst)); err != nil {
		return false, opError("pop", key, err)
	}
	n, err := s.ds.pop(ctx, key, 1, timeout, func(item []byte) error {
		return decodeInto(item, dst, s.ds.maxPayload)
	})
	return n == 1, err
}

// Len returns the number of items in the queue called name.
func (s *QueueStore) Len(ctx context.Context, name string) (int64, error) {
	key := QueueKey(s.ds.prefix, name)
	if err := checkName(name); err != nil {
		return 0, opError("len", key, err)
	}
	return s.ds.llen(ctx, key)
}

// push sends the push c, which holds its key and encoded items, through
// the push coalescer, and gives c back.
func (ds *DataStore) push(ctx context.Context, c *call[pushArg]) error {
	defer ds.batch.push.put(c)
	key := c.arg.key
	if len(c.arg.items) == 0 {
		return nil
	}
	cl, release, err := ds.Connection.acquire()
	if err != nil {
		return opError("push", key, err)
	}
	defer release()
	c.items = len(c.arg.items)
	for _, it := range c.arg.items {
		c.bytes += len(it.([]byte))
	}
	ds.batch.push.do(ctx, cl, c)
	ds.Connection.sawError(c.err)
	return opError("push", key, c.err)
}

func (ds *DataStore) llen(ctx context.Context, key string) (n int64, err error) {
	err = ds.Connection.call("len", key, func(cl redis.UniversalClient) (err error) {
		n, err = cl.LLen(ctx, key).Result()
		return err
	})
	return n, err
}

// pop takes up to n items from the tail of key, waiting up to timeout for
// the first, and hands each to accept in order. It returns how many accept
// took. Items accept refuses are moved to the dead-letter list before pop
// returns (while the operation still holds the connection, so Close cannot
// come in between), and the error wraps the last refusal.
//
// It first takes what is there without waiting (RPOP key count, coalesced
// with the pops of other callers); only when that finds the queue empty
// and timeout > 0 does it wait, on a blocking connection.
func (ds *DataStore) pop(ctx context.Context, key string, n int, timeout time.Duration, accept func([]byte) error) (int, error) {
	switch {
	case timeout < 0:
		return 0, opError("pop", key, fmt.Errorf("%w: negative timeout %v", ErrInvalidArgument, timeout))
	case n < 1:
		return 0, opError("pop", key, fmt.Errorf("%w: count %d < 1", ErrInvalidArgument, n))
	}
	if err := ctx.Err(); err != nil {
		return 0, opError("pop", key, err)
	}
	cl, release, err := ds.Connection.acquire()
	if err != nil {
		return 0, opError("pop", key, err)
	}
	defer release()

	c := ds.batch.pop.get()
	defer ds.batch.pop.put(c) // after accept: c holds the items
	c.arg.key, c.arg.n, c.items = key, n, n
	ds.batch.pop.do(ctx, cl, c)
	if c.err != nil {
		ds.Connection.sawError(c.err)
		return 0, opError("pop", key, callerEnded(ctx, c.err)) // nothing taken, or lost with the reply
	}
	items := c.arg.items
	var popErr error
	if len(items) == 0 && timeout > 0 {
		waitCtx, stop := ds.Connection.untilClose(ctx)
		item, ok, err := ds.Connection.brpop(waitCtx, key, timeout)
		stop()
		ds.Connection.sawError(err)
		if err != nil {
			if ctx.Err() == nil && ds.Connection.closing.Err() != nil {
				err = ErrClosed
			}
			return 0, opError("pop", key, mapErr(callerEnded(ctx, err)))
		}
		if !ok {
			return 0, nil
		}
		items = append(items, item)
		if n > 1 {
			// RPOP with a count takes what is there, oldest first, at once;
			// sent once, as the coalesced pops are: go-redis would send it
			// again after losing its reply, and what the first took would
			// be lost without a word.
			cmd := redis.NewStringSliceCmd(ctx, "rpop", key, n-1)
			_ = cl.Process(context.WithoutCancel(ctx), onceStringSlice{cmd})
			res, err := popResult(cmd)
			if err != nil {
				popErr = opError("pop", key, err)
			}
			for _, r := range res {
				items = append(items, []byte(r))
			}
		}
	}

	accepted := 0
	var bad []any
	var refusal error
	for _, it := range items {
		if err := accept(it); err != nil {
			bad, refusal = append(bad, it), err
			continue
		}
		accepted++
	}
	if len(bad) == 0 {
		return accepted, popErr
	}
	return accepted, errors.Join(popErr, ds.deadLetter(ctx, cl, key, bad, refusal))
}

// deadLetter keeps bad, items that pop took off key and accept refused
// with refusal, in the queue's dead-letter list, and returns the error for
// the caller, which says where the items are. They are off the queue
// already, so nothing may give up on them because ctx ended.
//
// The write runs as a script that may write when the server's memory is
// full (maxmemory with noeviction), since it only puts back memory the
// items held a moment ago. A server that refuses script flags (Redis
// before 7.0) refuses the write then; so does a network failure. Then the
// items go back to the tail of the queue, where they were, and are popped
// next; only if that fails too are they lost, and the error says so.
func (ds *DataStore) deadLetter(ctx context.Context, cl redis.UniversalClient, key string, bad []any, refusal error) error {
	dead := DeadKey(key)
	wctx, cancel := settleContext(ctx)
	defer cancel()
	// The dead-letter list is the script's one key: a plain queue's own
	// key is in another cluster slot.
	derr := deadLetterScript.run(wctx, ds.Connection, cl, []string{dead}, bad...).Err()
	if derr == nil {
		return opError("pop", key, fmt.Errorf("%w (%d item(s) moved to %q)", refusal, len(bad), dead))
	}
	derr = mapErr(derr)
	back := slices.Clone(bad)
	slices.Reverse(back) // RPUSH puts its last argument at the tail: the oldest item goes last
	if rerr := cl.RPush(wctx, key, back...).Err(); rerr != nil {
		return opError("pop", key, fmt.Errorf("%w; %d item(s) are lost: moving them to %q failed (%w), and so did putting them back (%w)", refusal, len(bad), dead, derr, mapErr(rerr)))
	}
	return opError("pop", key, fmt.Errorf("%w; %d item(s) put back at the tail of the queue: moving them to %q failed (%w)", refusal, len(bad), dead, derr))
}
