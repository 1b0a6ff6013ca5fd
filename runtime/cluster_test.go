package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

// TestOnCluster runs the runtime on a Redis Cluster of 3 primaries and 3
// replicas through a caller's *redis.ClusterClient: queues whose keys land
// on every primary (pushes coalesced across them), blocking pops and
// their cancel (CLIENT UNBLOCK on the primary that owns the queue), caches,
// and at-least-once queues end to end: batches, Consume, Stats, dead
// letters.
func TestOnCluster(t *testing.T) {
	redistest.SingleOnly(t, "starts a cluster of its own, the same whatever the run's topology")
	c, err := redistest.StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	t.Run("caller's client", func(t *testing.T) { onCluster(t, c, newStore(t, Options{Client: cc, Prefix: "cl1:"})) })
	t.Run("Addrs", func(t *testing.T) { onCluster(t, c, newStore(t, Options{Addrs: c.Addrs(), Prefix: "cl2:"})) })
}

func onCluster(t *testing.T, c *redistest.Cluster, ds *DataStore) {

	// Queue names whose slots fall on each of the three primaries.
	owner := func(key string) int {
		slot := keyspace.Slot(key)
		for i := range c.Primaries {
			if first, last := c.Slots(i); first <= slot && slot <= last {
				return i
			}
		}
		return -1
	}
	var queues []Queue[int]
	seen := map[int]bool{}
	for i := 0; len(seen) < 3 && i < 100; i++ {
		q := testQueue[int](t, ds, fmt.Sprintf("q%d", i))
		if o := owner(q.Key()); !seen[o] {
			seen[o] = true
			queues = append(queues, q)
		}
	}
	if len(queues) != 3 {
		t.Fatalf("found queues on %d primaries", len(queues))
	}

	// Concurrent pushes to queues on three primaries (one coalesced
	// pipeline across nodes), then every item popped once, in order.
	var wg sync.WaitGroup
	for _, q := range queues {
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					if err := q.Push(bg, g*1000+i); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, q := range queues {
		last := map[int]int{}
		for range 400 {
			v, ok, err := q.Pop(bg, time.Second)
			if err != nil || !ok {
				t.Fatalf("Pop on %s = %v, %v", q.Key(), ok, err)
			}
			if g, i := v/1000, v%1000; i < last[g] {
				t.Fatalf("%s: item %d of goroutine %d after %d", q.Key(), i, g, last[g])
			} else {
				last[g] = i + 1
			}
		}
		if n, err := q.Len(bg); n != 0 || err != nil {
			t.Errorf("Len after = %d, %v", n, err)
		}
	}

	// A blocking pop on each primary's queue gets an item pushed later,
	// and a cancelled one returns at once: CLIENT UNBLOCK went to the
	// primary it waits on.
	for _, q := range queues {
		got := make(chan int, 1)
		go func() {
			v, _, err := q.Pop(bg, 5*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		time.Sleep(50 * time.Millisecond)
		if err := q.Push(bg, 7); err != nil {
			t.Fatal(err)
		}
		if v := <-got; v != 7 {
			t.Errorf("blocking Pop on %s = %d; want 7", q.Key(), v)
		}
		ctx, cancel := context.WithCancel(bg)
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		if _, _, err := q.Pop(ctx, 10*time.Second); !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
			t.Errorf("cancelled Pop on %s = %v after %v; want context.Canceled at once", q.Key(), err, time.Since(start))
		}
	}

	// Caches on every primary.
	for i := range 30 {
		e := testCache[int](ds, fmt.Sprintf("c%d", i), time.Minute)
		if err := e.Set(bg, i); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := e.Get(bg); !ok || err != nil || v != i {
			t.Fatalf("Get %s = %v, %v, %v", e.Key(), v, ok, err)
		}
	}

	// At-least-once: push in batches, ReceiveMany, Consume the rest,
	// Stats, and a dead letter, on queues of every primary.
	var reliables []ReliableQueue[int]
	seen = map[int]bool{}
	for i := 0; len(seen) < 3 && i < 100; i++ {
		r := testReliable[int](ds, fmt.Sprintf("r%d", i), time.Minute, 1)
		if o := owner(r.Key()); !seen[o] {
			seen[o] = true
			reliables = append(reliables, r)
		}
	}
	for n, r := range reliables {
		vs := make([]int, 300)
		for i := range vs {
			vs[i] = i
		}
		if err := r.PushMany(bg, vs...); err != nil {
			t.Fatal(err)
		}
		ds1, err := r.ReceiveMany(bg, 10, time.Second)
		if err != nil || len(ds1) != 10 || ds1[0].Value != 0 {
			t.Fatalf("ReceiveMany on primary %d = %d, %v", n, len(ds1), err)
		}
		for _, d := range ds1[1:] {
			if err := d.Ack(bg); err != nil {
				t.Fatal(err)
			}
		}
		if err := ds1[0].Nack(bg, 0); err != nil { // its one delivery: now dead
			t.Fatal(err)
		}
		var cnt Counters
		ctx, cancel := context.WithTimeout(bg, 30*time.Second)
		err = r.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			if cnt.Received.Load() >= 290 {
				cancel()
			}
			return nil
		}, ConsumeOptions{Concurrency: 16, Counters: &cnt, Logger: slog.New(slog.DiscardHandler)})
		cancel()
		if err != nil || cnt.Acked.Load() != 290 {
			t.Fatalf("Consume on primary %d = %v, acked %d; want 290", n, err, cnt.Acked.Load())
		}
		st, err := r.Stats(bg)
		if err != nil || st != (Stats{Dead: 1}) {
			t.Errorf("Stats on primary %d = %+v, %v; want one dead letter and nothing else", n, st, err)
		}
	}
}

// TestClientKinds: Options.Client takes a *redis.Client or a
// *redis.ClusterClient, and refuses other UniversalClients; a cluster's
// and a Sentinel group's fields are refused in bad company.
func TestClientKinds(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	for _, o := range []Options{
		{Client: ring},
		{Addrs: []string{"127.0.0.1:1"}, URL: "redis://127.0.0.1:2/0"},
		{Addrs: []string{"127.0.0.1:1"}, Addr: "127.0.0.1:2"},
		{Addrs: []string{"127.0.0.1:1"}, DB: 1},
		{Addrs: []string{"127.0.0.1:1"}, MasterName: "m", SentinelAddrs: []string{"127.0.0.1:2"}},
		{Addrs: []string{"127.0.0.1"}},
		{MasterName: "m"},
		{SentinelAddrs: []string{"127.0.0.1:2"}},
		{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:2"}, Client: ring},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v; want ErrInvalidArgument", o, err)
		}
	}
	for _, o := range []Options{
		{Addrs: []string{"127.0.0.1:1", "[::1]:2"}, Username: "u", Password: "p", PoolSize: 3},
		{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:2"}, DB: 2, Password: "p", SentinelPassword: "s"},
	} {
		ds, err := New(o)
		if err != nil {
			t.Errorf("New(%+v) = %v", o, err)
			continue
		}
		ds.Close()
	}
}
