package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestQueueStats: an at-most-once queue's Stats counts its ready items and
// its dead letters, summed over shards, in either layout (a plain queue's
// dead-letter list is in another slot than the queue on a cluster).
func TestQueueStats(t *testing.T) {
	ds := newStore(t, Options{})
	for _, tc := range []struct {
		name string
		q    Queue[int]
	}{
		{"tagged", testQueue[int](t, ds, "stats-tagged")},
		{"plain", NewQueue[int](ds, &QueueDecl{Name: "p", Prefix: ds.prefix, Key: MustKeyPattern("stats_{id}"), Layout: LayoutPlain}, "a_b")},
		{"sharded", shardedQueue[int](ds, "stats-sharded", 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			if s, err := q.Stats(bg); err != nil || s != (QueueStats{}) {
				t.Fatalf("Stats of an empty queue = %+v, %v", s, err)
			}
			// An undecodable item becomes a dead letter when popped.
			if err := rawClient(t).RPush(bg, q.Key(), "not json").Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := q.PopMany(bg, 10, 0); !errors.Is(err, ErrDecode) {
				t.Fatalf("Pop of an undecodable item = %v; want ErrDecode", err)
			}
			if err := q.PushMany(bg, 1, 2, 3, 4, 5); err != nil {
				t.Fatal(err)
			}
			s, err := q.Stats(bg)
			if want := (QueueStats{Ready: 5, Dead: 1}); err != nil || s != want {
				t.Fatalf("Stats = %+v, %v; want %+v", s, err, want)
			}
			if n, err := q.Len(bg); err != nil || n != s.Ready {
				t.Errorf("Len = %d, %v; want Stats.Ready %d", n, err, s.Ready)
			}
		})
	}
	bad := NewQueue[int](ds, &QueueDecl{Name: "bad", Prefix: ds.prefix, Key: MustKeyPattern("q_{id}")}, "")
	if _, err := bad.Stats(bg); !errors.Is(err, ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "storagegen: stats ") {
		t.Errorf("Stats with a bad argument = %v; want ErrInvalidArgument, op stats", err)
	}
}

// TestCacheStats: a missing entry, one with a TTL, one without expiry;
// MemoryBytes is what MEMORY USAGE says.
func TestCacheStats(t *testing.T) {
	ds := newStore(t, Options{})
	c := testCache[string](ds, "stats", time.Minute)
	if s, err := c.Stats(bg); err != nil || s != (CacheStats{}) {
		t.Fatalf("Stats of a missing entry = %+v, %v", s, err)
	}
	value := strings.Repeat("v", 1000)
	if err := c.SetTTL(bg, value, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(bg)
	if err != nil || !s.Exists || s.NoExpiry || s.TTL <= 1400*time.Millisecond || s.TTL > 1500*time.Millisecond {
		t.Fatalf("Stats after SetTTL(1500ms) = %+v, %v", s, err)
	}
	mem, err := rawClient(t).MemoryUsage(bg, c.Key()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryBytes != mem || s.MemoryBytes < int64(len(value)) {
		t.Errorf("MemoryBytes = %d; MEMORY USAGE says %d (value of %d bytes)", s.MemoryBytes, mem, len(value))
	}
	forever := NewCache[string](ds, &CacheDecl{Name: "forever", Prefix: ds.prefix, Key: MustKeyPattern("forever"), TTL: NoExpiry})
	if err := forever.Set(bg, "x"); err != nil {
		t.Fatal(err)
	}
	if s, err := forever.Stats(bg); err != nil || !s.Exists || !s.NoExpiry || s.TTL != 0 || s.MemoryBytes <= 0 {
		t.Errorf("Stats of an entry without expiry = %+v, %v", s, err)
	}
}

// TestCacheStatsWithoutMemoryUsage: a user whose ACL lacks +memory|usage
// (the README's line without it) gets MemoryBytes MemoryUnknown and the
// rest of Stats.
func TestCacheStatsWithoutMemoryUsage(t *testing.T) {
	if !redistest.Limited() {
		t.Skip("REDIS_URL is set: the test makes users on servers it does not own")
	}
	const user, pw = "storagegen-nomemory", "nomemory-pw"
	prefix := testPrefix(t)
	rules := slices.DeleteFunc(redistest.AppUserRules(prefix), func(r string) bool { return r == "+memory|usage" })
	redistest.SetUser(t, user, append([]string{"reset", "on", ">" + pw}, rules...)...)
	ds := newStore(t, Options{URL: redistest.WithUser(redisURL, url.UserPassword(user, pw)), Prefix: prefix})
	c := testCache[string](ds, "stats", time.Minute)
	if err := c.Set(bg, "x"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(bg)
	if err != nil || !s.Exists || s.TTL <= 0 || s.MemoryBytes != MemoryUnknown {
		t.Fatalf("Stats without +memory|usage = %+v, %v; want the entry with MemoryBytes %d", s, err, MemoryUnknown)
	}
}

// evalCounter counts the scripts a client runs.
type evalCounter struct{ n atomic.Int64 }

func (h *evalCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *evalCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *evalCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestPause: a paused queue takes pushes and leases nothing; a receiver
// waits (looking again about once a second, not in a busy loop) and
// returns nothing at its timeout, or ctx's error when cancelled; one that
// was already blocked in BLMOVE when the pause came gives the item it
// moved back, uncounted; Stats says Paused, in another DataStore too;
// Reclaim still puts an expired lease back; after Resume every item is
// received once, with its first delivery.
func TestPause(t *testing.T) {
	hook := &evalCounter{}
	cl := testClient(t)
	cl.AddHook(hook)
	ds := newStore(t, Options{Client: cl})
	q := testReliable[int](ds, "pause", 10*time.Second, 0)

	// A receiver blocked in BLMOVE before the pause.
	type got struct {
		d   *Delivery[int]
		ok  bool
		err error
	}
	early := make(chan got, 1)
	go func() {
		d, ok, err := q.Receive(bg, 20*time.Second)
		early <- got{d, ok, err}
	}()
	if redistest.Limited() {
		waitBlocked(t, redistest.AppUser)
	} else {
		time.Sleep(200 * time.Millisecond)
	}

	// An item leased before the pause, whose lease then runs out.
	if err := q.Pause(bg); err != nil {
		t.Fatal(err)
	}
	if err := q.Pause(bg); err != nil { // pausing twice is no error
		t.Fatal(err)
	}
	if err := q.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatalf("Push to a paused queue: %v", err)
	}
	// The blocked receiver's BLMOVE moves item 1, its take finds the pause,
	// and the item goes back: ready, not in processing, not leased.
	for i := 0; ; i++ {
		s := queueState(t, q.Key())
		if len(s.Ready) == 3 && len(s.Processing) == 0 && len(s.Leases) == 0 && len(s.Attempts) == 0 {
			break
		}
		if i == 200 {
			t.Fatalf("the item the blocked receiver moved did not come back: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case g := <-early:
		t.Fatalf("a receiver of a paused queue got %+v", g)
	default:
	}

	st, err := q.Stats(bg)
	if want := (Stats{Ready: 3, Paused: true}); err != nil || st.Ready != want.Ready || st.InFlight != 0 || !st.Paused {
		t.Fatalf("Stats of the paused queue = %+v, %v; want %+v", st, err, want)
	}
	other := newStore(t, Options{Prefix: ds.prefix})
	if st, err := testReliable[int](other, "pause", 10*time.Second, 0).Stats(bg); err != nil || !st.Paused {
		t.Errorf("Stats in another DataStore = %+v, %v; want Paused", st, err)
	}

	if _, ok, err := q.Receive(bg, 0); ok || err != nil {
		t.Fatalf("Receive(0) of a paused queue = %v, %v; want nothing", ok, err)
	}
	before := hook.n.Load()
	if ds, err := q.ReceiveMany(bg, 10, 1500*time.Millisecond); len(ds) != 0 || err != nil {
		t.Fatalf("ReceiveMany(1.5s) of a paused queue = %d deliveries, %v; want nothing", len(ds), err)
	}
	// About one take a second, and a reclaim or two: a busy loop runs
	// thousands.
	if n := hook.n.Load() - before; n > 12 {
		t.Errorf("a paused ReceiveMany of 1.5s ran %d scripts; want a few (no busy loop)", n)
	}
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, ok, err := q.Receive(ctx, 20*time.Second); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Receive of a paused queue = %v, %v; want context.Canceled", ok, err)
	}

	// Reclaim works while paused: an expired lease (made by hand, as a
	// receiver before the pause would have left it) comes back as ready.
	raw := rawClient(t)
	k := reliableKeys(q.Key())
	if err := raw.HSet(bg, k[keyItems], "leased", "4").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.HSet(bg, k[keyAttempts], "leased", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.ZAdd(bg, k[keyLeases], redis.Z{Score: 1, Member: "leased"}).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Reclaim(bg); err != nil || n != 1 {
		t.Fatalf("Reclaim of a paused queue = %d, %v; want 1", n, err)
	}
	if st, err := q.Stats(bg); err != nil || st.Ready != 4 || st.InFlight != 0 || !st.Paused {
		t.Fatalf("Stats after Reclaim = %+v, %v; want 4 ready, paused", st, err)
	}

	if err := q.Resume(bg); err != nil {
		t.Fatal(err)
	}
	if err := q.Resume(bg); err != nil { // resuming twice is no error
		t.Fatal(err)
	}
	if st, err := q.Stats(bg); err != nil || st.Paused {
		t.Fatalf("Stats after Resume = %+v, %v; want not paused", st, err)
	}
	g := <-early
	if g.err != nil || !g.ok {
		t.Fatalf("the early receiver after Resume: %v, %v", g.ok, g.err)
	}
	seen := []int{g.d.Value}
	if g.d.Attempt != 1 {
		t.Errorf("item %d came with attempt %d; want 1: the pause must not count a delivery", g.d.Value, g.d.Attempt)
	}
	for range 10 {
		ds, err := q.ReceiveMany(bg, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			seen = append(seen, d.Value)
			if d.Value != 4 && d.Attempt != 1 {
				t.Errorf("item %d came with attempt %d; want 1", d.Value, d.Attempt)
			}
		}
		if len(seen) >= 4 {
			break
		}
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []int{1, 2, 3, 4}) {
		t.Errorf("after Resume, received %v; want 1 2 3 4 once each", seen)
	}
}

// TestPauseConsume: Consume handles nothing while its queue is paused,
// and everything once it is resumed; a sharded queue is paused on every
// shard (on a cluster, every shard's slot).
func TestPauseConsume(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(map[int]string{1: "one", 4: "sharded"}[shards], func(t *testing.T) {
			ds := newStore(t, Options{})
			q := shardedReliable[int](ds, "pause-consume", shards, 10*time.Second, 0)
			if err := q.Pause(bg); err != nil {
				t.Fatal(err)
			}
			raw := rawClient(t)
			for _, k := range q.ShardKeys() {
				if n, err := raw.Exists(bg, pausedKey(k)).Result(); err != nil || n != 1 {
					t.Fatalf("pause key of shard %s: %d, %v", k, n, err)
				}
			}
			const items = 40
			vs := make([]int, items)
			for i := range vs {
				vs[i] = i
			}
			if err := q.PushMany(bg, vs...); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var handled []int
			ctx, cancel := context.WithCancel(bg)
			done := make(chan error, 1)
			go func() {
				done <- q.Consume(ctx, func(_ context.Context, d *Delivery[int]) error {
					mu.Lock()
					handled = append(handled, d.Value)
					mu.Unlock()
					return nil
				}, ConsumeOptions{Concurrency: 4, BlockTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			}()
			// While paused, Consume goes round its receive loop (three
			// block timeouts) and handles nothing.
			for range 30 {
				if st, err := q.Stats(bg); err != nil || st.InFlight != 0 || st.Ready != items || !st.Paused {
					t.Fatalf("Stats while paused = %+v, %v", st, err)
				}
				time.Sleep(30 * time.Millisecond)
			}
			mu.Lock()
			n := len(handled)
			mu.Unlock()
			if n != 0 {
				t.Fatalf("Consume handled %d items of a paused queue", n)
			}
			if err := q.Resume(bg); err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				st, err := q.Stats(bg)
				if err == nil && st.Ready == 0 && st.InFlight == 0 {
					break
				}
				if i == 500 {
					t.Fatalf("after Resume, Stats = %+v, %v", st, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			slices.Sort(handled)
			if !slices.Equal(handled, vs) {
				t.Errorf("handled %v; want each of 0…%d once", handled, items-1)
			}
		})
	}
}
