package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// Sharded queues.
//
// A queue declared with Shards N > 1 is N lists (each with the keys an
// unsharded queue has), whose hash tags differ, so that on a cluster they
// spread over the slots, and so over the primaries. Shard 0 is the key the
// queue has unsharded (keyspace.ShardKey), so a queue that grows from one
// shard strands nothing. Every operation works on one shard at a time, so
// every script still touches one slot.
//
//   - An at-most-once push goes to the next shard round-robin (a counter
//     per queue and DataStore): one producer spreads its items exactly
//     evenly, and no item waits for a shard's turn. A PushMany deals its
//     items over the shards the same way, one LPUSH per shard, sent
//     concurrently (the coalescer may put them in one pipeline); not
//     atomic across shards.
//   - An at-least-once item goes to shard keyspace.ShardOf(ID): a function
//     of the ID alone, so a PushID that is retried, by anyone, goes to the
//     shard that has its marker and is deduplicated there. A PushMany
//     sends one push script per shard its IDs fall on.
//   - A pop or a receive first sweeps the shards without waiting, starting
//     at a shard that rotates with every call (a counter per queue and
//     DataStore), so none is starved: the first shard directly (one round
//     trip when it has items), then, if more are wanted, every shard that
//     a pipelined LLEN finds non-empty, in turn. Only when the sweep finds
//     nothing does it wait.
//   - The wait takes nothing. It is a BLMOVE of a shard's list onto
//     itself (tail to tail), which blocks until the list has an item and
//     then leaves it where it was: a wake-up, not a pop. It waits on up to
//     maxShardWaits shards at once, each on a blocking connection of its
//     own (a cluster refuses a blocking command on keys of two slots),
//     starting at the rotating shard; the first to wake ends the others
//     with CLIENT UNBLOCK, and the sweep runs again from the shard that
//     woke. Since a wait never holds an item, ending or cancelling one
//     can lose nothing. When more shards exist than are waited on, the
//     wait lasts at most shardSweepSlice before the next sweep, so an
//     item on a shard nobody waits on is found within that.
//   - Only the first wait's connection is waited for (within the call's
//     timeout, as for an unsharded pop); the others are taken only if free
//     at once, so a sharded pop holds 1 to maxShardWaits connections of
//     the BlockingPoolSize, whatever N is.
//   - Len, Stats and the dead letters sum (or merge) the shards: not one
//     snapshot of the server, but one per shard.

const (
	// maxShardWaits is the most shards one pop or receive waits on at once.
	maxShardWaits = 8
	// shardSweepSlice bounds a wait that does not cover every shard.
	shardSweepSlice = 100 * time.Millisecond
	// shardFanOut is the most shards read or written at once by one call
	// of Stats, the dead letters' operations and Reclaim.
	shardFanOut = 16
)

// shardSet is a sharded queue as one DataStore knows it: its keys and,
// for an at-least-once queue, the reliable core of each shard, with the
// counters that rotate pushes and sweeps. DataStore.shardSets keeps one per
// queue (and settings), so accessors that build the queue anew for every
// call cost a map lookup.
type shardSet struct {
	keys      []string
	rel       []*reliable   // at-least-once queues only
	push      atomic.Uint64 // round-robin of at-most-once pushes
	start     atomic.Uint64 // the first shard of the next sweep or wait
	reclaimed atomic.Int64  // unix ns when receives last looked at every shard's reclaim
}

// shardSetKey is what tells two sharded queues apart in
// DataStore.shardSets.
type shardSetKey struct {
	key           string // shard 0's
	n             int
	reliable      bool
	lease, window time.Duration
	maxDeliveries int
}

// checkShards reports a declaration's Shards that no schema allows.
func checkShards(n int) error {
	if n < 0 || n > keyspace.MaxShards {
		return fmt.Errorf("%w: %d shards; want 1 to %d", ErrInvalidArgument, n, keyspace.MaxShards)
	}
	return nil
}

// shardsFor returns the shard set of the queue called name with n > 1
// shards. r, for an at-least-once queue, is shard 0's reliable core, whose
// settings every shard shares.
func (ds *DataStore) shardsFor(prefix, name string, n int, r *reliable) *shardSet {
	k := shardSetKey{key: keyspace.QueueKey(prefix, name), n: n}
	if r != nil {
		k.reliable, k.lease, k.window, k.maxDeliveries = true, r.lease, r.window, r.maxDeliveries
	}
	if v, ok := ds.shardSets.Load(k); ok {
		return v.(*shardSet)
	}
	sh := &shardSet{keys: keyspace.ShardKeys(prefix, name, n)}
	if r != nil {
		sh.rel = make([]*reliable, n)
		for i, key := range sh.keys {
			ri := *r
			ri.key, ri.keys, ri.paused, ri.meta = key, reliableKeys(key), pausedKey(key), metaKey(key)
			sh.rel[i] = &ri
		}
	}
	v, _ := ds.shardSets.LoadOrStore(k, sh)
	return v.(*shardSet)
}

// first returns the shard a sweep starts at: the given one, or, for -1,
// the next in rotation.
func (sh *shardSet) first(given int) int {
	if given >= 0 {
		return given
	}
	return int(sh.start.Add(1) % uint64(len(sh.keys)))
}

// ShardKeys returns the key of every shard of the queue, shard 0 (the
// queue's Key) first; one key for an unsharded queue.
func (q Queue[T]) ShardKeys() []string {
	if q.sh != nil {
		return slices.Clone(q.sh.keys)
	}
	return []string{q.key}
}

// ShardKeys returns the key of every shard's ready list, shard 0 (the
// queue's Key) first; one key for an unsharded queue. Each shard's other
// keys share its key as a prefix and hash tag.
func (q ReliableQueue[T]) ShardKeys() []string {
	if q.sh != nil {
		return slices.Clone(q.sh.keys)
	}
	return []string{q.key}
}

// each runs fn for every shard, up to shardFanOut at once, and joins
// their errors.
func (sh *shardSet) each(fn func(i int) error) error {
	errs := make([]error, len(sh.keys))
	sem := make(chan struct{}, shardFanOut)
	var wg sync.WaitGroup
	for i := range sh.keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lens reads the length of each of keys with one pipeline (on a cluster,
// one per primary).
func (ds *DataStore) lens(ctx context.Context, op, key string, keys []string, card bool) ([]int64, error) {
	out := make([]int64, len(keys))
	err := ds.Connection.call(op, key, func(cl redis.UniversalClient) error {
		cmds := make([]*redis.IntCmd, len(keys))
		_, err := cl.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				if card {
					cmds[i] = p.ZCard(ctx, k)
				} else {
					cmds[i] = p.LLen(ctx, k)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, c := range cmds {
			out[i] = c.Val()
		}
		return nil
	})
	return out, err
}

// sum adds up ns.
func sum(ns []int64) int64 {
	var t int64
	for _, n := range ns {
		t += n
	}
	return t
}

// waitShards waits, without taking anything, until one of the shards
// (keys) has an item, up to deadline or until ctx ends, and returns the
// first that woke, or -1 when none did in time. It waits on up to
// maxShardWaits of them at once, from start on; when that is not all of
// them, for at most shardSweepSlice (and limit, if positive).
func (ds *DataStore) waitShards(ctx context.Context, keys []string, start int, deadline time.Time, limit time.Duration) (int, error) {
	c := ds.Connection
	// Registered, so that Close waits for the wait (which it ends) before
	// it closes the blocking pools.
	_, release, err := c.acquire()
	if err != nil {
		return -1, err
	}
	defer release()
	n := min(len(keys), maxShardWaits)
	until := deadline
	if n < len(keys) {
		limit = min(limit, shardSweepSlice)
		if limit <= 0 {
			limit = shardSweepSlice
		}
	}
	if t := time.Now().Add(limit); limit > 0 && t.Before(until) {
		until = t
	}
	wctx, stop := c.untilClose(ctx)
	defer stop()
	type woke struct {
		shard int
		ok    bool
		err   error
	}
	results := make(chan woke, n)
	wctx, cancel := context.WithCancel(wctx)
	defer cancel()
	waits := 0
	for j := range n {
		i := (start + j) % len(keys)
		// The first connection is waited for, within the caller's
		// deadline; the others only if one is free now.
		wait := deadline
		if j > 0 {
			wait = time.Now()
		}
		bc, err := c.getBlockConn(wctx, keys[i], wait)
		if err != nil {
			if j > 0 {
				break // none free now: wait on those there are; the next sweep finds the rest
			}
			return -1, err
		}
		waits++
		go func() {
			key := keys[i]
			_, ok, err := c.popOn(wctx, bc, until, func(ctx context.Context, conn *redis.Conn, t time.Duration) (string, error) {
				// BLMOVE a list onto its own tail: wakes when the list has
				// an item, and leaves it there.
				return conn.BLMove(ctx, key, key, "RIGHT", "RIGHT", t).Result()
			})
			c.putBlockConn(bc)
			results <- woke{i, ok, err}
		}()
	}
	first, ended := -1, false
	var errs []error
	for range waits {
		w := <-results
		switch {
		case w.ok && first < 0:
			first = w.shard
			cancel() // end the other waits: none holds an item
			ended = true
		case w.err != nil && !(ended && errors.Is(w.err, context.Canceled)):
			errs = append(errs, w.err)
		}
	}
	if first >= 0 {
		return first, nil
	}
	if len(errs) > 0 {
		err := errs[0]
		if ctx.Err() == nil && c.closing.Err() != nil {
			err = ErrClosed
		}
		return -1, mapErr(err)
	}
	return -1, nil
}

// pushSharded deals vs over the shards round-robin, one LPUSH per shard
// (sent concurrently); items on one shard keep their order. Nothing is
// written if any item cannot be encoded. Not atomic across shards: the
// error names each shard whose LPUSH failed, and the items of the others
// are stored.
func (q Queue[T]) pushSharded(ctx context.Context, vs []T) error {
	sh := q.sh
	if len(vs) == 0 {
		return nil
	}
	items := make([]any, len(vs))
	for i, v := range vs {
		b, err := encode(v, q.ds.maxPayload)
		if err != nil {
			return opError("push", q.key, fmt.Errorf("item %d: %w", i, err))
		}
		items[i] = b
	}
	n := uint64(len(sh.keys))
	start := sh.push.Add(uint64(len(vs))) - uint64(len(vs))
	if len(vs) == 1 {
		return q.ds.pushTo(ctx, sh.keys[start%n], items)
	}
	groups := make(map[int][]any, min(len(vs), len(sh.keys)))
	for j, it := range items {
		i := int((start + uint64(j)) % n)
		groups[i] = append(groups[i], it)
	}
	errs := make([]error, 0, len(groups))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, its := range groups {
		wg.Go(func() {
			if err := q.ds.pushTo(ctx, sh.keys[i], its); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%d of %d items: %w", len(its), len(vs), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pushTo LPUSHes encoded items to key through the push coalescer.
func (ds *DataStore) pushTo(ctx context.Context, key string, items []any) error {
	c := ds.batch.push.get()
	c.arg.key, c.arg.items = key, items
	return ds.push(ctx, c)
}

// pop takes up to n items for Pop and PopMany: from the queue, or from
// its shards.
func (q Queue[T]) pop(ctx context.Context, n int, timeout time.Duration, accept func([]byte) error) (int, error) {
	if q.sh == nil {
		return q.ds.pop(ctx, q.key, n, timeout, accept)
	}
	switch {
	case timeout < 0:
		return 0, opError("pop", q.key, fmt.Errorf("%w: negative timeout %v", ErrInvalidArgument, timeout))
	case n < 1:
		return 0, opError("pop", q.key, fmt.Errorf("%w: count %d < 1", ErrInvalidArgument, n))
	}
	deadline := time.Now().Add(timeout)
	first := -1
	for {
		got, err := q.sweepPop(ctx, n, first, accept)
		if got > 0 || err != nil || timeout == 0 {
			return got, err
		}
		if !time.Now().Before(deadline) {
			return 0, nil
		}
		start := q.sh.first(-1)
		if first, err = q.ds.waitShards(ctx, q.sh.keys, start, deadline, 0); err != nil {
			return 0, opError("pop", q.key, err)
		}
	}
}

// sweepPop takes up to n items that are there, without waiting: from the
// first shard (first, or the next in rotation), then from every other
// shard that has items, in turn.
func (q Queue[T]) sweepPop(ctx context.Context, n, first int, accept func([]byte) error) (int, error) {
	sh := q.sh
	start := sh.first(first)
	got, err := q.ds.pop(ctx, sh.keys[start], n, 0, accept)
	if got >= n || err != nil {
		return got, err
	}
	lens, err := q.ds.lens(ctx, "pop", q.key, sh.keys, false)
	if err != nil {
		return got, quietAfter(got, err)
	}
	for j := 1; j < len(sh.keys) && got < n; j++ {
		i := (start + j) % len(sh.keys)
		if lens[i] == 0 {
			continue
		}
		k, err := q.ds.pop(ctx, sh.keys[i], n-got, 0, accept)
		got += k
		if err != nil {
			return got, quietAfter(got, err)
		}
	}
	return got, nil
}

// quietAfter drops err, the failure of a sweep's later step, when the sweep
// has items already: they are returned, and the failure comes again on the
// next call if it lasts. A refused item (ErrDecode) is always reported.
func quietAfter(got int, err error) error {
	if got > 0 && !errors.Is(err, ErrDecode) && !errors.Is(err, ErrPayloadTooLarge) {
		return nil
	}
	return err
}

// lenSharded sums the lengths of the shards' lists.
func (q Queue[T]) lenSharded(ctx context.Context) (int64, error) {
	ns, err := q.ds.lens(ctx, "len", q.key, q.sh.keys, false)
	return sum(ns), err
}

// pushPayloads stores encoded items under ids: on the queue, or on the
// shard of each ID, one push script per shard (sent concurrently).
func (q ReliableQueue[T]) pushPayloads(ctx context.Context, ids []string, payloads [][]byte) error {
	sh := q.sh
	if sh == nil {
		return q.r.push(ctx, ids, payloads)
	}
	type group struct {
		ids      []string
		payloads [][]byte
	}
	groups := map[int]*group{}
	for j, id := range ids {
		i := keyspace.ShardOf(id, len(sh.keys))
		g := groups[i]
		if g == nil {
			g = &group{}
			groups[i] = g
		}
		g.ids, g.payloads = append(g.ids, id), append(g.payloads, payloads[j])
	}
	if len(groups) == 1 {
		for i, g := range groups {
			return sh.rel[i].push(ctx, g.ids, g.payloads)
		}
	}
	errs := make([]error, 0, len(groups))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			if err := sh.rel[i].push(ctx, g.ids, g.payloads); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%d of %d items: %w", len(g.ids), len(ids), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shard returns the unsharded queue of shard i.
func (q ReliableQueue[T]) shard(i int) ReliableQueue[T] {
	return ReliableQueue[T]{r: q.sh.rel[i], key: q.sh.keys[i]}
}

// lenSharded sums the shards' ready lists.
func (q ReliableQueue[T]) lenSharded(ctx context.Context) (int64, error) {
	ns, err := q.r.ds.lens(ctx, "len", q.key, q.sh.keys, false)
	return sum(ns), err
}

// statsSharded adds up the shards' Stats; OldestReady is the oldest of
// theirs, and unknown when any shard's is.
func (q ReliableQueue[T]) statsSharded(ctx context.Context) (Stats, error) {
	all := make([]Stats, len(q.sh.keys))
	err := q.sh.each(func(i int) (err error) {
		all[i], err = q.shard(i).Stats(ctx)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	for _, t := range all {
		s.Ready += t.Ready
		s.InFlight += t.InFlight
		s.Expired += t.Expired
		s.Delayed += t.Delayed
		s.Dead += t.Dead
		s.OldestReady = max(s.OldestReady, t.OldestReady)
		s.OldestReadyUnknown = s.OldestReadyUnknown || t.OldestReadyUnknown
		s.Paused = s.Paused || t.Paused
	}
	return s, nil
}

// reclaimSharded reclaims every shard.
func (q ReliableQueue[T]) reclaimSharded(ctx context.Context) (int, error) {
	var total atomic.Int64
	err := q.sh.each(func(i int) error {
		n, err := q.shard(i).reclaim(ctx) // the caller's Reclaim records the call
		total.Add(int64(n))
		return err
	})
	return int(total.Load()), err
}

// lease leases up to n items for Receive, ReceiveMany and Consume: from
// the queue, or from its shards.
func (q ReliableQueue[T]) lease(ctx context.Context, n int, timeout time.Duration, cnt *Counters) ([]leased, error) {
	if q.sh == nil {
		return q.r.receive(ctx, n, timeout, cnt)
	}
	if timeout < 0 {
		return nil, opError("receive", q.key, fmt.Errorf("%w: negative timeout %v", ErrInvalidArgument, timeout))
	}
	ds := q.r.ds
	cl, release, err := ds.Connection.acquire()
	if err != nil {
		return nil, opError("receive", q.key, err)
	}
	defer release()
	ds.warnEviction(ctx, cl)
	fail := func(err error) ([]leased, error) {
		if ctx.Err() == nil && ds.Connection.closing.Err() != nil {
			err = ErrClosed
		}
		return nil, opError("receive", q.key, mapErr(err))
	}
	deadline := time.Now().Add(timeout)
	first := -1
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := q.reclaimShards(ctx, cl, cnt); err != nil {
			return fail(err)
		}
		ls, paused, err := q.sweepTake(ctx, cl, n, first)
		if len(ls) > 0 || err != nil {
			return ls, err
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
		if paused {
			// A paused shard with items would wake every wait at once:
			// wait without one, and look again after a while.
			if err := ds.Connection.pause(ctx, min(time.Until(deadline), q.r.pauseRecheck())); err != nil {
				return fail(err)
			}
			first = -1
			continue
		}
		// Each wait lasts at most a reclaim interval, so that expired
		// leases and due delayed items of every shard come back while a
		// Receive waits and nothing else reclaims.
		start := q.sh.first(-1)
		if first, err = ds.waitShards(ctx, q.sh.keys, start, deadline, q.r.reclaimInterval()); err != nil {
			return fail(err)
		}
	}
}

// reclaimShards runs maybeReclaim on every shard, at most once per
// reclaim interval.
func (q ReliableQueue[T]) reclaimShards(ctx context.Context, cl redis.UniversalClient, cnt *Counters) error {
	prev, now := q.sh.reclaimed.Load(), time.Now().UnixNano()
	if now-prev < int64(q.r.reclaimInterval()) || !q.sh.reclaimed.CompareAndSwap(prev, now) {
		return nil
	}
	for _, r := range q.sh.rel {
		if err := r.maybeReclaim(ctx, cl, cnt); err != nil {
			q.sh.reclaimed.CompareAndSwap(now, prev) // let the next receive try again
			return err
		}
	}
	return nil
}

// sweepTake leases up to n ready items without waiting: from the first
// shard (first, or the next in rotation), then from every other shard
// whose ready list has items, in turn. paused reports that a shard it
// tried is paused. An error that comes with items
// concerns entries no reliable queue pushed (now dead letters); a failed
// take after others leased items is dropped, as a sweep of an unsharded
// queue would have stopped there.
func (q ReliableQueue[T]) sweepTake(ctx context.Context, cl redis.UniversalClient, n, first int) (_ []leased, paused bool, _ error) {
	sh := q.sh
	start := sh.first(first)
	ls, paused, err := takeShard(ctx, cl, sh.rel[start], n)
	if len(ls) >= n || (err != nil && !errors.Is(err, ErrDecode)) {
		return ls, paused, err
	}
	errs := []error{err}
	lens, lerr := q.r.ds.lens(ctx, "receive", q.key, sh.keys, false)
	if lerr != nil {
		if len(ls) == 0 {
			return nil, paused, lerr
		}
		return ls, paused, errors.Join(errs...)
	}
	for j := 1; j < len(sh.keys) && len(ls) < n; j++ {
		i := (start + j) % len(sh.keys)
		if lens[i] == 0 || ctx.Err() != nil {
			continue
		}
		more, p, err := takeShard(ctx, cl, sh.rel[i], n-len(ls))
		ls, paused = append(ls, more...), paused || p
		if err != nil && !errors.Is(err, ErrDecode) {
			if len(ls) == 0 {
				return nil, paused, err
			}
			break
		}
		errs = append(errs, err)
	}
	return ls, paused, errors.Join(errs...)
}

// takeShard runs one take on r (up to n of its oldest ready items) under a
// receipt of its own, and undoes it by that receipt when its reply is
// lost, as an unsharded receive does. paused reports that r is paused.
func takeShard(ctx context.Context, cl redis.UniversalClient, r *reliable, n int) (_ []leased, paused bool, _ error) {
	receipt := receiptKey(r.key, rand.Text())
	ls, due, foreign, err := r.take(ctx, cl, receipt, "", n)
	if err != nil {
		sctx, cancel := settleContext(ctx)
		err = errors.Join(err, r.release(sctx, cl, receipt, ""))
		cancel()
		return nil, false, err
	}
	return ls, due == duePaused, foreign
}

// settleGrouped runs fn (ack or extend) once per shard that the deliveries
// of hs are on (rs[i] is hs[i]'s), concurrently when they are on several,
// and returns the reply for each delivery and the error of its shard's
// script. An unsharded queue's deliveries make one group: one script.
func settleGrouped(ctx context.Context, rs []*reliable, hs []held, fn func(r *reliable, ctx context.Context, hs []held) ([]int64, error)) ([]int64, []error) {
	res, errs := make([]int64, len(hs)), make([]error, len(hs))
	groups := map[*reliable][]int{}
	var order []*reliable
	for i, r := range rs {
		if groups[r] == nil {
			order = append(order, r)
		}
		groups[r] = append(groups[r], i)
	}
	run := func(r *reliable) {
		idx := groups[r]
		part := make([]held, len(idx))
		for j, i := range idx {
			part[j] = hs[i]
		}
		out, err := fn(r, ctx, part)
		for j, i := range idx {
			errs[i] = err
			if j < len(out) { // with ErrNotReplicated, the script ran: its replies stand
				res[i] = out[j]
			}
		}
	}
	if len(order) == 1 {
		run(order[0])
		return res, errs
	}
	var wg sync.WaitGroup
	for _, r := range order {
		wg.Go(func() { run(r) })
	}
	wg.Wait()
	return res, errs
}

// The dead letters of a sharded queue are those of its shards.

func (dl DeadLetters[T]) lenSharded(ctx context.Context) (int64, error) {
	q := dl.q
	keys := make([]string, len(q.sh.rel))
	for i, r := range q.sh.rel {
		keys[i] = r.keys[keyDead]
	}
	ns, err := q.r.ds.lens(ctx, "dead", q.key, keys, true)
	return sum(ns), err
}

// peekSharded returns the n oldest of the n oldest of each shard.
func (dl DeadLetters[T]) peekSharded(ctx context.Context, n int) ([]DeadLetter[T], error) {
	q := dl.q
	all := make([][]DeadLetter[T], len(q.sh.keys))
	err := q.sh.each(func(i int) (err error) {
		all[i], err = q.shard(i).Dead().Peek(ctx, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := slices.Concat(all...)
	slices.SortStableFunc(out, func(a, b DeadLetter[T]) int { return a.Time.Compare(b.Time) })
	return out[:min(n, len(out))], nil
}

// requeueSharded requeues up to n dead letters, shard by shard.
func (dl DeadLetters[T]) requeueSharded(ctx context.Context, n int) (int, error) {
	q := dl.q
	total := 0
	for i := range q.sh.keys {
		if total >= n {
			break
		}
		got, err := q.shard(i).Dead().Requeue(ctx, n-total)
		total += got
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// purgeSharded purges every shard's dead letters.
func (dl DeadLetters[T]) purgeSharded(ctx context.Context) (int, error) {
	q := dl.q
	var total atomic.Int64
	err := q.sh.each(func(i int) error {
		got, err := q.shard(i).Dead().Purge(ctx)
		total.Add(int64(got))
		return err
	})
	return int(total.Load()), err
}

// firstError returns the first non-nil error of errs.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
