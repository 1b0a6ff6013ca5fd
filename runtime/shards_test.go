package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

// Sharded queues (shards.go), on the single test server here and on a
// 3+3 cluster in TestShardsOnCluster: the same checks, through
// shardChecks.

func shardedQueue[T any](ds *DataStore, name string, shards int) Queue[T] {
	return NewQueue[T](ds, &QueueDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name), Shards: shards})
}

func shardedReliable[T any](ds *DataStore, name string, shards int, lease time.Duration, maxDeliveries int) ReliableQueue[T] {
	return NewReliableQueue[T](ds, &QueueDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name), Shards: shards, Lease: lease, MaxDeliveries: maxDeliveries})
}

func TestShards(t *testing.T) {
	shardChecks(t, func(t *testing.T) (*DataStore, redis.UniversalClient) {
		return newStore(t, Options{}), rawClient(t)
	})
}

// TestShardsOnCluster: the shards of one queue land on different
// primaries (CLUSTER KEYSLOT and the owner of each slot say where), and
// every check of TestShards holds there.
func TestShardsOnCluster(t *testing.T) {
	redistest.SingleOnly(t, "starts a cluster of its own (TestShards runs on the run's topology)")
	c, err := redistest.StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()

	// The four shards of "spread" are on all three primaries: shard 0 is
	// the unsharded key, the others have tags of their own.
	ds := newStore(t, Options{Client: cc, Prefix: "sh0:"})
	q := shardedQueue[int](ds, "spread", 4)
	owners := map[string]bool{}
	for i, key := range q.ShardKeys() {
		slot, err := cc.ClusterKeySlot(bg, key).Result()
		if err != nil || int(slot) != keyspace.Slot(key) {
			t.Fatalf("CLUSTER KEYSLOT %s = %d, %v; keyspace.Slot says %d", key, slot, err, keyspace.Slot(key))
		}
		n, err := c.Owner(bg, int(slot))
		if err != nil {
			t.Fatal(err)
		}
		owners[n.Addr] = true
		t.Logf("shard %d: %s, slot %d on %s", i, key, slot, n.Addr)
	}
	if len(owners) != 3 {
		t.Fatalf("the shards of %s are on %d primaries; want 3", q.Key(), len(owners))
	}
	// Items pushed to the sharded queue are on three primaries.
	for i := range 8 {
		if err := q.Push(bg, i); err != nil {
			t.Fatal(err)
		}
	}
	for i, key := range q.ShardKeys() {
		if n, err := cc.LLen(bg, key).Result(); n != 2 || err != nil {
			t.Errorf("shard %d holds %d, %v; want 2", i, n, err)
		}
	}

	n := 0
	shardChecks(t, func(t *testing.T) (*DataStore, redis.UniversalClient) {
		n++
		return newStore(t, Options{Addrs: c.Addrs(), Prefix: fmt.Sprintf("sh%d:", n)}), cc
	})
}

// shardChecks runs the checks of sharded queues on DataStores that
// newDS makes, with a raw client on the same server or cluster.
func shardChecks(t *testing.T, newDS func(t *testing.T) (*DataStore, redis.UniversalClient)) {
	quiet := slog.New(slog.DiscardHandler)

	// FIFO per shard: pushes go round-robin, each shard holds its items in
	// push order, and pops give every shard's items in that order.
	t.Run("FIFO per shard", func(t *testing.T) {
		ds, raw := newDS(t)
		q := shardedQueue[int](ds, "fifo", 4)
		for i := range 200 {
			if err := q.Push(bg, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.PushMany(bg, 200, 201, 202, 203, 204, 205); err != nil {
			t.Fatal(err)
		}
		shardOf := map[int]int{}
		for i, key := range q.ShardKeys() {
			items, err := raw.LRange(bg, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(items) < 51 || len(items) > 52 {
				t.Errorf("shard %d holds %d items; want 51 or 52 of 206 dealt round-robin", i, len(items))
			}
			for _, s := range items {
				var v int
				fmt.Sscan(s, &v)
				shardOf[v] = i
			}
		}
		if n, err := q.Len(bg); n != 206 || err != nil {
			t.Fatalf("Len = %d, %v; want 206", n, err)
		}
		last := []int{-1, -1, -1, -1}
		got := 0
		for got < 206 {
			vs, err := q.PopMany(bg, 1+got%7, time.Second)
			if err != nil || len(vs) == 0 {
				t.Fatalf("PopMany after %d = %v, %v", got, vs, err)
			}
			for _, v := range vs {
				s := shardOf[v]
				if v <= last[s] {
					t.Fatalf("shard %d gave %d after %d", s, v, last[s])
				}
				last[s] = v
			}
			got += len(vs)
		}
		if n, err := q.Len(bg); n != 0 || err != nil {
			t.Errorf("Len after = %d, %v", n, err)
		}
	})

	// No shard is starved: a shard with a few items among a hot one's
	// gives them within the first rounds of the rotation, for pops and
	// receives alike.
	t.Run("fair", func(t *testing.T) {
		ds, raw := newDS(t)
		q := shardedQueue[int](ds, "fair", 4)
		keys := q.ShardKeys()
		for i := range 100 {
			raw.LPush(bg, keys[0], 1000+i)
		}
		for i := range 5 {
			raw.LPush(bg, keys[3], 3000+i)
		}
		cold := 0
		for i := range 20 {
			v, ok, err := q.Pop(bg, 0)
			if err != nil || !ok {
				t.Fatalf("Pop %d = %v, %v", i, ok, err)
			}
			if v >= 3000 {
				cold++
			}
		}
		if cold != 5 {
			t.Errorf("20 pops took %d of shard 3's 5 items beside shard 0's 100", cold)
		}

		r := shardedReliable[int](ds, "fairr", 2, time.Minute, 5)
		var hot, few []string
		for i := 0; len(hot) < 60 || len(few) < 5; i++ {
			id := fmt.Sprint("id-", i)
			switch s := keyspace.ShardOf(id, 2); {
			case s == 0 && len(hot) < 60:
				hot = append(hot, id)
			case s == 1 && len(few) < 5:
				few = append(few, id)
			default:
				continue
			}
			if err := r.PushID(bg, id, i); err != nil {
				t.Fatal(err)
			}
		}
		// One handler: deliveries alternate between the shards while
		// both have items.
		var order []string
		ctx, cancel := context.WithCancel(bg)
		err := r.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			order = append(order, d.ID)
			if len(order) == 65 {
				cancel()
			}
			return nil
		}, ConsumeOptions{Concurrency: 1, Logger: quiet})
		cancel()
		if err != nil || len(order) != 65 {
			t.Fatalf("Consume = %v after %d deliveries", err, len(order))
		}
		for _, id := range few {
			if i := slices.Index(order, id); i < 0 || i >= 10 {
				t.Errorf("item %s of the cold shard was delivery %d of 65; want one of the first 10", id, i)
			}
		}
	})

	// A blocking pop wakes for an item on any shard, also when there are
	// more shards than one pop waits on at once.
	t.Run("blocking", func(t *testing.T) {
		ds, _ := newDS(t)
		for _, shards := range []int{3, maxShardWaits + 4} {
			q := shardedQueue[int](ds, fmt.Sprint("block", shards), shards)
			for i := range shards {
				got := make(chan int, 1)
				go func() {
					v, ok, err := q.Pop(bg, 20*time.Second)
					if err != nil || !ok {
						t.Errorf("blocking Pop = %v, %v", ok, err)
					}
					got <- v
				}()
				time.Sleep(20 * time.Millisecond) // usually blocked by now; either way it must get the item
				if err := q.Push(bg, i); err != nil {
					t.Fatal(err)
				}
				if v := <-got; v != i {
					t.Fatalf("blocking Pop = %d; want %d", v, i)
				}
			}
			r := shardedReliable[int](ds, fmt.Sprint("blockr", shards), shards, time.Minute, 5)
			for i := range shards {
				got := make(chan string, 1)
				go func() {
					d, ok, err := r.Receive(bg, 20*time.Second)
					if err != nil || !ok {
						t.Errorf("blocking Receive = %v, %v", ok, err)
						got <- ""
						return
					}
					if err := d.Ack(bg); err != nil {
						t.Error(err)
					}
					got <- d.ID
				}()
				time.Sleep(20 * time.Millisecond)
				id := fmt.Sprint("b", i)
				if err := r.PushID(bg, id, i); err != nil {
					t.Fatal(err)
				}
				if v := <-got; v != id {
					t.Fatalf("blocking Receive = %q; want %q", v, id)
				}
			}
		}
	})

	// Cancelled and timed-out blocking pops lose nothing: the wait takes
	// no item, so every item pushed is popped once or still queued.
	t.Run("cancelled pops lose nothing", func(t *testing.T) {
		ds, _ := newDS(t)
		q := shardedQueue[int](ds, "cancel", 12)
		const items = 600
		var popped sync.Map
		var dup atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 6 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 9))
				for i := 0; i < 10_000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithCancel(bg)
					if rng.IntN(2) == 0 {
						time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
					}
					v, ok, err := q.Pop(ctx, time.Duration(1+rng.IntN(5))*time.Millisecond)
					cancel()
					if err != nil && (!errors.Is(err, context.Canceled) || errors.Is(err, ErrUnknownOutcome)) {
						t.Error(err)
						return
					}
					if ok {
						if _, again := popped.LoadOrStore(v, true); again {
							dup.Add(1)
						}
					}
				}
			})
		}
		for i := range items {
			if err := q.Push(bg, i); err != nil {
				t.Fatal(err)
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		close(stop)
		wg.Wait()
		n := 0
		popped.Range(func(any, any) bool { n++; return true })
		left, err := q.Len(bg)
		if err != nil || dup.Load() != 0 || int64(n)+left != items {
			t.Errorf("popped %d (%d twice), %d left (%v); want %d in all, none twice", n, dup.Load(), left, err, items)
		}
	})

	// At-least-once, per item across shards: an item is on the shard of
	// its ID, a PushID retried (by another DataStore too) is stored once,
	// an unacked delivery comes back after its lease, acks and nacks go to
	// the item's own shard, and Consume acks every item once.
	t.Run("at-least-once", func(t *testing.T) {
		ds, raw := newDS(t)
		r := shardedReliable[int](ds, "alo", 4, 300*time.Millisecond, 3)
		other, err := New(Options{Client: raw, Prefix: ds.prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		r2 := shardedReliable[int](other, "alo", 4, 300*time.Millisecond, 3)
		ids := make([]string, 40)
		for i := range ids {
			ids[i] = fmt.Sprint("job-", i)
			for _, q := range []ReliableQueue[int]{r, r2, r} {
				if err := q.PushID(bg, ids[i], i); err != nil {
					t.Fatal(err)
				}
			}
		}
		perShard := make([]int, 4)
		for _, id := range ids {
			s := keyspace.ShardOf(id, 4)
			perShard[s]++
			if _, err := raw.LPos(bg, r.ShardKeys()[s], id, redis.LPosArgs{}).Result(); err != nil {
				t.Errorf("%s is not on shard %d: %v", id, s, err)
			}
		}
		for i, key := range r.ShardKeys() {
			if n, _ := raw.LLen(bg, key).Result(); int(n) != perShard[i] {
				t.Errorf("shard %d holds %d IDs; want %d", i, n, perShard[i])
			}
		}
		if st, err := r.Stats(bg); err != nil || st.Ready != 40 {
			t.Fatalf("Stats = %+v, %v; want 40 ready (each ID once)", st, err)
		}
		// A receiver that dies: its deliveries come back after the lease.
		first, err := r.ReceiveMany(bg, 100, time.Second)
		if err != nil || len(first) == 0 {
			t.Fatalf("ReceiveMany = %d, %v", len(first), err)
		}
		held := map[string]int{}
		for _, d := range first {
			held[d.ID] = d.Attempt
		}
		time.Sleep(400 * time.Millisecond) // past the lease
		if _, err := r2.Reclaim(bg); err != nil {
			t.Fatal(err)
		}
		if err := first[0].Ack(bg); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("Ack after the lease ran out = %v; want ErrLeaseLost", err)
		}
		// Consume the lot on two DataStores: every ID acked once, those
		// received before on their second delivery.
		var mu sync.Mutex
		acked := map[string]int{}
		var cnt Counters
		ctx, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, q := range []ReliableQueue[int]{r, r2} {
			wg.Go(func() {
				err := q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
					mu.Lock()
					defer mu.Unlock()
					acked[d.ID]++
					if want := held[d.ID] + 1; d.Attempt != want {
						t.Errorf("%s delivered as attempt %d; want %d", d.ID, d.Attempt, want)
					}
					if len(acked) == len(ids) {
						cancel()
					}
					return nil
				}, ConsumeOptions{Concurrency: 7, Counters: &cnt, Logger: quiet})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			if acked[id] != 1 {
				t.Errorf("%s handled %d times; want once", id, acked[id])
			}
		}
		if st, err := r.Stats(bg); err != nil || st != (Stats{}) {
			t.Errorf("Stats after = %+v, %v; want nothing left", st, err)
		}
		if cnt.Acked.Load() != int64(len(ids)) {
			t.Errorf("acked %d; want %d", cnt.Acked.Load(), len(ids))
		}
	})

	// Nacks, dead letters and foreign entries stay on their shard; the
	// dead letters of every shard are counted, peeked, requeued and
	// purged.
	t.Run("dead letters", func(t *testing.T) {
		ds, raw := newDS(t)
		r := shardedReliable[int](ds, "dl", 3, time.Minute, 1)
		if err := r.PushMany(bg, 1, 2, 3, 4, 5, 6, 7, 8, 9); err != nil {
			t.Fatal(err)
		}
		raw.LPush(bg, r.ShardKeys()[2], "not-an-id") // a foreign entry on shard 2
		var ds1 []*Delivery[int]
		var foreign error
		for len(ds1) < 9 {
			got, err := r.ReceiveMany(bg, 4, time.Second)
			if err != nil && !errors.Is(err, ErrDecode) {
				t.Fatal(err)
			}
			if err != nil {
				foreign = err
			}
			if len(got) == 0 && err == nil {
				t.Fatalf("received %d of 9", len(ds1))
			}
			ds1 = append(ds1, got...)
		}
		if foreign == nil {
			t.Error("the foreign entry was not reported")
		}
		for _, d := range ds1 {
			if err := d.Nack(bg, 0); err != nil { // the last delivery: dead
				t.Fatal(err)
			}
			if s := keyspace.ShardOf(d.ID, 3); raw.ZScore(bg, r.ShardKeys()[s]+":dead", d.ID).Err() != nil {
				t.Errorf("%s is not a dead letter of its shard %d", d.ID, s)
			}
		}
		if n, err := r.Dead().Len(bg); n != 10 || err != nil {
			t.Fatalf("Dead().Len = %d, %v; want 10", n, err)
		}
		peek, err := r.Dead().Peek(bg, 4)
		if err != nil || len(peek) != 4 || !slices.IsSortedFunc(peek, func(a, b DeadLetter[int]) int { return a.Time.Compare(b.Time) }) {
			t.Fatalf("Peek = %d, %v; want the 4 oldest", len(peek), err)
		}
		if n, err := r.Dead().Requeue(bg, 5); n != 5 || err != nil {
			t.Fatalf("Requeue = %d, %v; want 5", n, err)
		}
		if n, err := r.Dead().Purge(bg); n != 5 || err != nil {
			t.Fatalf("Purge = %d, %v; want 5", n, err)
		}
		if st, err := r.Stats(bg); err != nil || st.Dead != 0 || st.Ready != 5 {
			t.Errorf("Stats = %+v, %v; want 5 ready, none dead", st, err)
		}
	})

	// A handler stuck on items of one shard does not hold back the
	// others: with two of three handlers busy on shard 0, the third
	// handles every other item, from both shards.
	t.Run("busy shard", func(t *testing.T) {
		ds, _ := newDS(t)
		r := shardedReliable[string](ds, "busy", 2, time.Minute, 5)
		idsOn := func(shard, n int, tag string) []string {
			var out []string
			for i := 0; len(out) < n; i++ {
				if id := fmt.Sprint(tag, i); keyspace.ShardOf(id, 2) == shard {
					out = append(out, id)
				}
			}
			return out
		}
		blockers := idsOn(0, 2, "blocker-")
		for _, id := range blockers {
			if err := r.PushID(bg, id, "block"); err != nil {
				t.Fatal(err)
			}
		}
		release := make(chan struct{})
		busy := make(chan struct{}, 2)
		var handled atomic.Int64
		rest := append(idsOn(1, 20, "one-"), idsOn(0, 10, "zero-")...)
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(bg)
		var wg sync.WaitGroup
		wg.Go(func() {
			err := r.Consume(ctx, func(ctx context.Context, d *Delivery[string]) error {
				if d.Value == "block" {
					busy <- struct{}{}
					select {
					case <-release:
					case <-ctx.Done():
					}
					return nil
				}
				if handled.Add(1) == int64(len(rest)) {
					close(done)
				}
				return nil
			}, ConsumeOptions{Concurrency: 3, Logger: quiet, GracePeriod: 5 * time.Second})
			if err != nil {
				t.Error(err)
			}
		})
		<-busy
		<-busy
		for _, id := range rest {
			if err := r.PushID(bg, id, "work"); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("the free handler handled %d of %d items while two handlers were busy", handled.Load(), len(rest))
		}
		close(release)
		cancel()
		wg.Wait()
	})
}
