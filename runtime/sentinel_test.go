package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestOnSentinel runs the runtime through a Sentinel group (1 primary, 1
// replica, 3 sentinels, started by the test) with a caller's
// redis.NewFailoverClient: pushes, blocking pops and their cancels, and a
// Consume that goes on through SENTINEL FAILOVER, losing nothing: the
// blocking connections to the old primary are dropped when it turns
// replica, and new ones go to the new primary.
func TestOnSentinel(t *testing.T) {
	redistest.SingleOnly(t, "starts a Sentinel group of its own, the same whatever the run's topology")
	g, err := redistest.StartSentinel()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName, SentinelAddrs: g.Addrs(), DialTimeout: time.Second})
	defer fc.Close()
	t.Run("caller's client", func(t *testing.T) {
		onSentinel(t, g, newStore(t, Options{Client: fc, Prefix: "sentinel1:"}))
	})
	t.Run("MasterName and SentinelAddrs", func(t *testing.T) {
		onSentinel(t, g, newStore(t, Options{MasterName: g.MasterName, SentinelAddrs: g.Addrs(), Prefix: "sentinel2:"}))
	})
}

// onSentinel runs the test on ds, and fails the group over once.
func onSentinel(t *testing.T, g *redistest.SentinelGroup, ds *DataStore) {
	primary, err := g.Master(bg)
	if err != nil {
		t.Fatal(err)
	}
	q := testQueue[int](t, ds, "q")
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	if vs, err := q.PopMany(bg, 5, time.Second); err != nil || len(vs) != 2 {
		t.Fatalf("PopMany = %v, %v", vs, err)
	}
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, _, err := q.Pop(ctx, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Pop = %v", err)
	}

	// A consumer runs through the failover; items pushed before and after
	// it are each acked once.
	r := testReliable[int](ds, "r", 2*time.Second, 0)
	const before, after = 200, 200
	vs := make([]int, before)
	for i := range vs {
		vs[i] = i
	}
	if err := r.PushMany(bg, vs...); err != nil {
		t.Fatal(err)
	}
	var cnt Counters
	var seen [before + after]atomic.Int32
	cctx, stop := context.WithTimeout(bg, 60*time.Second)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- r.Consume(cctx, func(ctx context.Context, d *Delivery[int]) error {
			seen[d.Value].Add(1)
			return nil
		}, ConsumeOptions{Concurrency: 8, BlockTimeout: 500 * time.Millisecond, Counters: &cnt, Logger: slog.New(slog.DiscardHandler)})
	}()
	waitFor5s(t, "the first items to be acked", func() bool { return cnt.Acked.Load() >= before })
	sentinel := redis.NewClient(&redis.Options{Addr: g.Sentinels[0].Addr})
	defer sentinel.Close()
	if err := sentinel.Do(bg, "SENTINEL", "FAILOVER", g.MasterName).Err(); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if m, err := g.Master(bg); err != nil || m == primary {
		t.Fatalf("after SENTINEL FAILOVER the master is %v (%v); want the other node", m, err)
	}
	// A blocking pop on the empty queue works again: the dedicated
	// connections to the old primary, now a replica, are not reused.
	var popErr error
	for range 50 {
		if _, _, popErr = q.Pop(bg, 200*time.Millisecond); popErr == nil {
			break
		}
	}
	if popErr != nil {
		t.Errorf("blocking Pop after the failover keeps failing: %v", popErr)
	}
	// Pushes resume on the new primary (go-redis's failover client may
	// take a moment to switch).
	for i := before; i < before+after; i++ {
		var err error
		for range 100 {
			if err = r.PushID(bg, fmt.Sprint("after-", i), i); err == nil { // stored once however often it is sent
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("push %d after the failover: %v", i, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for cnt.Acked.Load() < before+after && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Consume = %v", err)
	}
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Errorf("item %d handled %d times", i, n)
		}
	}
}
