package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/runtime"
)

// Item is one item of a queue, or a dead letter, or a cache entry's
// value, as stored, checked against the declaration's payload type.
type Item struct {
	Shard int    `json:"shard"`
	ID    string `json:"id,omitempty"` // an at-least-once item's ID
	// State is "ready", "in_flight" or "dead".
	State     string `json:"state"`
	Attempts  int    `json:"attempts,omitempty"`   // deliveries so far (at-least-once)
	LastError string `json:"last_error,omitempty"` // the last handler error, decode error or lease note (at-least-once)
	// Age is how long it has been ready (at-least-once) or dead (an
	// at-least-once dead letter), by the server's clock; nil where the
	// server keeps no time (at-most-once lists).
	Age *Duration `json:"age_ms,omitempty"`
	// LeaseLeft is an in-flight item's time left on its lease; negative
	// when the lease ran out and no reclaim has put it back yet.
	LeaseLeft *Duration `json:"lease_left_ms,omitempty"`
	Size      int       `json:"size"` // bytes of the payload
	// Value is the payload when it is JSON; Raw its bytes when it is not.
	Value jsontext.Value `json:"value,omitempty"`
	Raw   []byte         `json:"raw,omitempty"`
	// DecodeError is why the payload does not decode as the payload type
	// (naming the field, never a value), or "".
	DecodeError string `json:"decode_error,omitempty"`
}

// Items are some items of one instance.
type Items struct {
	Decl *Decl  `json:"decl"`
	Key  string `json:"key"`
	Args []Arg  `json:"args"`
	List []Item `json:"items"`
}

// item fills an Item's payload fields from data.
func (d *Decl) item(it Item, data []byte) Item {
	it.Size = len(data)
	if jsontext.Value(data).IsValid() {
		it.Value = jsontext.Value(slices.Clone(data))
	} else {
		it.Raw = slices.Clone(data)
	}
	if err := d.payload.check(data); err != nil {
		it.DecodeError = err.Error()
	}
	return it
}

// instance returns the arguments of the one instance f names, which must
// fix every argument of d, and its key.
func (d *Decl) instance(f Filter) ([]any, string, error) {
	args, ok := d.complete(f)
	if !ok {
		return nil, "", fmt.Errorf("%w: name every argument of %s %s (%s)", runtime.ErrInvalidArgument, d.Kind, d.Name, d.paramNames())
	}
	name, err := d.pattern.ExpandLayout(d.layout, args...)
	if err != nil {
		return nil, "", err
	}
	return args, d.keyOf(name), nil
}

// shardKeys returns the keys of the shards of the queue with key key0
// (shard 0's).
func (in *Inspector) shardKeys(d *Decl, args []any) []string {
	if d.reliable {
		return runtime.NewReliableQueue[jsontext.Value](in.ds, d.queue, args...).ShardKeys()
	}
	return runtime.NewQueue[jsontext.Value](in.ds, d.queue, args...).ShardKeys()
}

// serverTime returns the server's clock in ms, which leases and ready
// times are written in.
func serverTime(ctx context.Context, cl redis.UniversalClient) (int64, error) {
	t, err := cl.Time(ctx).Result()
	return t.UnixMilli(), err
}

// Peek returns up to n of the oldest ready items of the instance f names,
// oldest first (for a sharded at-most-once queue, whose lists keep no
// times: oldest first within each shard, shard after shard), each checked
// against the payload type; for an at-least-once queue, also up to n
// items in flight, the lease that ends first first. It changes nothing.
func (in *Inspector) Peek(ctx context.Context, d *Decl, f Filter, n int) (*Items, error) {
	if d.Kind != KindQueue {
		return nil, fmt.Errorf("%w: peek is for queues; %s is a cache (use CacheGet)", ErrNotSupported, d.Name)
	}
	args, key, err := d.instance(f)
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: count %d < 1", runtime.ErrInvalidArgument, n)
	}
	out := &Items{Decl: d, Key: key, Args: d.argList(args), List: []Item{}}
	keys := in.shardKeys(d, args)
	err = in.ds.Do("peek", key, func(cl redis.UniversalClient) error {
		if !d.reliable {
			for i, k := range keys {
				raw, err := cl.LRange(ctx, k, int64(-n), -1).Result()
				if err != nil {
					return err
				}
				for j := len(raw) - 1; j >= 0 && len(out.List) < n; j-- {
					out.List = append(out.List, d.item(Item{Shard: i, State: "ready"}, []byte(raw[j])))
				}
			}
			return nil
		}
		now, err := serverTime(ctx, cl)
		if err != nil {
			return err
		}
		var ready, flying []Item
		for i, k := range keys {
			r, fl, err := in.peekReliable(ctx, cl, d, i, keyspace.ReliableKeys(k), n, now)
			if err != nil {
				return err
			}
			ready, flying = append(ready, r...), append(flying, fl...)
		}
		// The oldest ready first; the lease that ends first first.
		slices.SortStableFunc(ready, func(a, b Item) int { return -cmpDur(a.Age, b.Age) })
		slices.SortStableFunc(flying, func(a, b Item) int { return cmpDur(a.LeaseLeft, b.LeaseLeft) })
		out.List = append(out.List, ready[:min(n, len(ready))]...)
		out.List = append(out.List, flying[:min(n, len(flying))]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func cmpDur(a, b *Duration) int {
	av, bv := Duration(0), Duration(0)
	if a != nil {
		av = *a
	}
	if b != nil {
		bv = *b
	}
	switch {
	case av < bv:
		return -1
	case av > bv:
		return 1
	}
	return 0
}

// peekReliable reads up to n of the oldest ready IDs and the n leases that
// end first of one shard, with their payloads, attempts, last errors and
// times. The IDs are read first, then the rest in one pipeline: an ID
// settled in between is left out.
func (in *Inspector) peekReliable(ctx context.Context, cl redis.UniversalClient, d *Decl, shard int, keys []string, n int, now int64) (ready, flying []Item, err error) {
	ids, err := cl.LRange(ctx, keys[keyspace.Ready], int64(-n), -1).Result()
	if err != nil {
		return nil, nil, err
	}
	slices.Reverse(ids)
	leases, err := cl.ZRangeWithScores(ctx, keys[keyspace.Leases], 0, int64(n-1)).Result()
	if err != nil {
		return nil, nil, err
	}
	all := slices.Clone(ids)
	for _, z := range leases {
		all = append(all, z.Member.(string))
	}
	if len(all) == 0 {
		return nil, nil, nil
	}
	pipe := cl.Pipeline()
	items := pipe.HMGet(ctx, keys[keyspace.Items], all...)
	attempts := pipe.HMGet(ctx, keys[keyspace.Attempts], all...)
	errs := pipe.HMGet(ctx, keys[keyspace.Errors], all...)
	readyAt := pipe.HMGet(ctx, keys[keyspace.ReadyAt], all...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, err
	}
	str := func(v any) (string, bool) { s, ok := v.(string); return s, ok }
	for i, id := range all {
		payload, ok := str(items.Val()[i])
		if !ok {
			continue // settled since
		}
		it := Item{Shard: shard, ID: id}
		a, _ := str(attempts.Val()[i])
		it.Attempts, _ = strconv.Atoi(a)
		it.LastError, _ = str(errs.Val()[i])
		if i < len(ids) {
			it.State = "ready"
			if at, ok := str(readyAt.Val()[i]); ok {
				if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
					age := Duration(time.Duration(max(now-ms, 0)) * time.Millisecond)
					it.Age = &age
				}
			}
			ready = append(ready, d.item(it, []byte(payload)))
		} else {
			it.State = "in_flight"
			left := Duration(time.Duration(int64(leases[i-len(ids)].Score)-now) * time.Millisecond)
			it.LeaseLeft = &left
			flying = append(flying, d.item(it, []byte(payload)))
		}
	}
	return ready, flying, nil
}

// Dead returns up to n of the oldest dead letters of the instance f
// names, each checked against the payload type: an at-least-once queue's
// with their ID, attempts, last error and age (from the runtime's
// DeadLetters.Peek); an at-most-once queue's (items that could not be
// decoded when popped) oldest first within each shard.
func (in *Inspector) Dead(ctx context.Context, d *Decl, f Filter, n int) (*Items, error) {
	if d.Kind != KindQueue {
		return nil, fmt.Errorf("%w: %s is a cache, which has no dead letters", ErrNotSupported, d.Name)
	}
	args, key, err := d.instance(f)
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: count %d < 1", runtime.ErrInvalidArgument, n)
	}
	out := &Items{Decl: d, Key: key, Args: d.argList(args), List: []Item{}}
	if d.reliable {
		q := runtime.NewReliableQueue[jsontext.Value](in.ds, d.queue, args...)
		dls, err := q.Dead().Peek(ctx, n)
		if err != nil {
			return nil, err
		}
		var now int64
		if err := in.ds.Do("time", "", func(cl redis.UniversalClient) (err error) {
			now, err = serverTime(ctx, cl)
			return err
		}); err != nil {
			return nil, err
		}
		for _, dl := range dls {
			age := Duration(time.Duration(max(now-dl.Time.UnixMilli(), 0)) * time.Millisecond)
			it := Item{Shard: keyspace.ShardOf(dl.ID, d.Shards), ID: dl.ID, State: "dead", Attempts: dl.Attempts, LastError: dl.LastError, Age: &age}
			out.List = append(out.List, d.item(it, dl.Payload))
		}
		return out, nil
	}
	keys := in.shardKeys(d, args)
	err = in.ds.Do("dead", key, func(cl redis.UniversalClient) error {
		for i, k := range keys {
			raw, err := cl.LRange(ctx, keyspace.DeadKey(k), int64(-n), -1).Result()
			if err != nil {
				return err
			}
			for j := len(raw) - 1; j >= 0 && len(out.List) < n; j-- {
				out.List = append(out.List, d.item(Item{Shard: i, State: "dead"}, []byte(raw[j])))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Requeue moves up to n of the oldest dead letters of the instance f
// names back to its queue and returns how many it moved. An at-least-once
// queue's go through the runtime's DeadLetters.Requeue (their delivery
// count reset). An at-most-once queue's go to the head of their shard's
// list, behind the items waiting, one LMOVE each; a plain queue on a
// cluster, whose dead-letter list is in another slot, copies each
// (LINDEX, LPUSH) and then removes it (LREM): a failure or crash between
// the two leaves a duplicate, never a loss.
func (in *Inspector) Requeue(ctx context.Context, d *Decl, f Filter, n int) (int, error) {
	if d.Kind != KindQueue {
		return 0, fmt.Errorf("%w: %s is a cache, which has no dead letters", ErrNotSupported, d.Name)
	}
	args, key, err := d.instance(f)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("%w: count %d < 1", runtime.ErrInvalidArgument, n)
	}
	if d.reliable {
		return runtime.NewReliableQueue[jsontext.Value](in.ds, d.queue, args...).Dead().Requeue(ctx, n)
	}
	moved := 0
	err = in.ds.Do("requeue", key, func(cl redis.UniversalClient) error {
		_, cluster := cl.(*redis.ClusterClient)
		for _, k := range in.shardKeys(d, args) {
			for moved < n {
				var err error
				if cluster && d.layout == keyspace.Plain {
					err = moveAcross(ctx, cl, keyspace.DeadKey(k), k)
				} else {
					err = cl.LMove(ctx, keyspace.DeadKey(k), k, "RIGHT", "LEFT").Err()
				}
				if errors.Is(err, redis.Nil) {
					break
				}
				if err != nil {
					return err
				}
				moved++
			}
		}
		return nil
	})
	return moved, err
}

// moveAcross moves the tail of from to the head of to, two keys in
// different cluster slots, which no one command or script may touch
// together. It copies before it removes: LINDEX the tail, LPUSH it to to,
// then LREM one equal value from the tail end of from. A failure or a
// crash between the two leaves the item in both lists (a duplicate, which
// requeueing again would repeat), never in neither. A concurrent requeue
// of the same list may push the same item twice.
func moveAcross(ctx context.Context, cl redis.UniversalClient, from, to string) error {
	v, err := cl.LIndex(ctx, from, -1).Result()
	if err != nil {
		return err
	}
	if err := cl.LPush(ctx, to, v).Err(); err != nil {
		return err
	}
	if err := cl.LRem(context.WithoutCancel(ctx), from, -1, v).Err(); err != nil {
		return fmt.Errorf("the item is now in the queue and still among the dead letters: %w", err)
	}
	return nil
}

// Purge deletes the dead letters of the instance f names and returns how
// many it deleted.
func (in *Inspector) Purge(ctx context.Context, d *Decl, f Filter) (int, error) {
	if d.Kind != KindQueue {
		return 0, fmt.Errorf("%w: %s is a cache, which has no dead letters", ErrNotSupported, d.Name)
	}
	args, key, err := d.instance(f)
	if err != nil {
		return 0, err
	}
	if d.reliable {
		return runtime.NewReliableQueue[jsontext.Value](in.ds, d.queue, args...).Dead().Purge(ctx)
	}
	total := 0
	err = in.ds.Do("purge", key, func(cl redis.UniversalClient) error {
		for _, k := range in.shardKeys(d, args) {
			var n *redis.IntCmd
			if _, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
				n = p.LLen(ctx, keyspace.DeadKey(k))
				p.Del(ctx, keyspace.DeadKey(k))
				return nil
			}); err != nil {
				return err
			}
			total += int(n.Val())
		}
		return nil
	})
	return total, err
}

// reliableOnly returns the at-least-once queue f names.
func (in *Inspector) reliableOnly(d *Decl, f Filter, op string) (runtime.ReliableQueue[jsontext.Value], error) {
	var zero runtime.ReliableQueue[jsontext.Value]
	if !d.reliable {
		return zero, fmt.Errorf("%w: %s is for at-least-once queues; %s %s is %s", ErrNotSupported, op, d.Kind, d.Name, map[bool]string{true: "a cache", false: "at-most-once"}[d.Kind == KindCache])
	}
	args, _, err := d.instance(f)
	if err != nil {
		return zero, err
	}
	return runtime.NewReliableQueue[jsontext.Value](in.ds, d.queue, args...), nil
}

// Reclaim puts the instance's in-flight items whose lease ran out back in
// its ready list (the runtime's Reclaim) and returns how many.
func (in *Inspector) Reclaim(ctx context.Context, d *Decl, f Filter) (int, error) {
	q, err := in.reliableOnly(d, f, "reclaim")
	if err != nil {
		return 0, err
	}
	return q.Reclaim(ctx)
}

// Pause pauses the instance (the runtime's Pause): its receivers wait
// without taking items; pushes go on.
func (in *Inspector) Pause(ctx context.Context, d *Decl, f Filter) error {
	q, err := in.reliableOnly(d, f, "pause")
	if err != nil {
		return err
	}
	return q.Pause(ctx)
}

// Resume ends a pause (the runtime's Resume).
func (in *Inspector) Resume(ctx context.Context, d *Decl, f Filter) error {
	q, err := in.reliableOnly(d, f, "resume")
	if err != nil {
		return err
	}
	return q.Resume(ctx)
}

// Entry is one cache entry with its value.
type Entry struct {
	Decl  *Decl        `json:"decl"`
	Key   string       `json:"key"`
	Args  []Arg        `json:"args"`
	Stats *CacheCounts `json:"stats"`
	Item  *Item        `json:"item,omitempty"` // nil when the entry does not exist
}

// CacheGet reads the entry f names: its Stats (TTL, memory) and its value
// checked against the payload type.
func (in *Inspector) CacheGet(ctx context.Context, d *Decl, f Filter) (*Entry, error) {
	if d.Kind != KindCache {
		return nil, fmt.Errorf("%w: -get is for caches; %s is a queue", ErrNotSupported, d.Name)
	}
	args, key, err := d.instance(f)
	if err != nil {
		return nil, err
	}
	e := &Entry{Decl: d, Key: key, Args: d.argList(args)}
	if e.Stats, err = in.cacheStats(ctx, d, args); err != nil {
		return nil, err
	}
	var data []byte
	found := false
	err = in.ds.Do("get", key, func(cl redis.UniversalClient) error {
		b, err := cl.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		data, found = b, err == nil
		return err
	})
	if err != nil {
		return nil, err
	}
	if found {
		it := d.item(Item{State: "ready"}, data)
		e.Item = &it
	}
	return e, nil
}

// CacheEntries finds the entries of d whose arguments f fixes, with their
// TTLs and memory (Instances of a cache).
func (in *Inspector) CacheEntries(ctx context.Context, d *Decl, f Filter) (*Instances, error) {
	if d.Kind != KindCache {
		return nil, fmt.Errorf("%w: %s is a queue", ErrNotSupported, d.Name)
	}
	return in.Instances(ctx, d, f)
}

// Filter returns the filter that names x.
func (x Instance) Filter() Filter {
	f := Filter{}
	for _, a := range x.Args {
		f[a.Name] = a.Value
	}
	return f
}
