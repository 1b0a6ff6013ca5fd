package runtime

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/redistest"
)

// startServer starts a redis-server of its own for one test, with args,
// stopped at the end of the test.
func startServer(t *testing.T, args ...string) *redistest.Server {
	t.Helper()
	srv, err := redistest.Start(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// median returns the median of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestExactTimeoutsAtHz10 times Pop and Receive on an empty queue on a
// server with hz 10, whose blocked clients time out only on its 100 ms
// cron tick: a 10 ms BRPOP alone returns after up to 100 ms. The runtime
// ends the wait at its own deadline, so the median overshoot of several
// tries must be under 10 ms, and no try may return early.
func TestExactTimeoutsAtHz10(t *testing.T) {
	redistest.SingleOnly(t, "a server of its own with hz 10")
	srv := startServer(t, "--hz", "10")
	ds := newStore(t, Options{URL: srv.URL(0), Prefix: "hz10:"})
	q := NewQueue[int](ds, &QueueDecl{Name: "empty", Prefix: "hz10:", Key: MustKeyPattern("empty")})
	rq := NewReliableQueue[int](ds, &QueueDecl{Name: "rempty", Prefix: "hz10:", Key: MustKeyPattern("rempty")})
	if _, _, err := q.Pop(bg, time.Millisecond); err != nil { // warm the pools
		t.Fatal(err)
	}
	if _, _, err := rq.Receive(bg, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	const tries = 7
	for _, timeout := range []time.Duration{10 * time.Millisecond, 120 * time.Millisecond} {
		for _, op := range []struct {
			name string
			call func() (bool, error)
		}{
			{"Pop", func() (bool, error) { _, ok, err := q.Pop(bg, timeout); return ok, err }},
			{"Receive", func() (bool, error) { _, ok, err := rq.Receive(bg, timeout); return ok, err }},
		} {
			var took []time.Duration
			for range tries {
				start := time.Now()
				ok, err := op.call()
				d := time.Since(start)
				if ok || err != nil {
					t.Fatalf("%s(%v) = %v, %v; want a timeout", op.name, timeout, ok, err)
				}
				if d < timeout {
					t.Errorf("%s(%v) returned after %v, before its timeout", op.name, timeout, d)
				}
				took = append(took, d)
			}
			m := median(took)
			t.Logf("%s(%v) on hz 10: median %v, all %v", op.name, timeout, m.Round(100*time.Microsecond), took)
			if m > timeout+10*time.Millisecond {
				t.Errorf("%s(%v): median %v; want within 10ms of the timeout", op.name, timeout, m)
			}
		}
	}
}

// TestTimeoutsNeverLoseItems pops with timeouts of 1–3 ms while items
// trickle in, so that many waits are ended by the runtime's own deadline
// (CLIENT UNBLOCK) just as an item arrives: every item arrives exactly
// once.
func TestTimeoutsNeverLoseItems(t *testing.T) {
	const items, consumers = 3000, 6
	ds := newStore(t, Options{})
	q := testQueue[int](t, ds, "deadlines")
	var seen sync.Map
	var received, dup, timeouts atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			for {
				select {
				case <-done:
					return
				default:
				}
				v, ok, err := q.Pop(bg, time.Duration(1000+rng.IntN(2000))*time.Microsecond)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					timeouts.Add(1)
					continue
				}
				if _, loaded := seen.LoadOrStore(v, true); loaded {
					dup.Add(1)
				}
				received.Add(1)
			}
		})
	}
	trickle(t, items, 2*time.Millisecond, q.PushMany, &received)
	close(done)
	wg.Wait()
	n, _ := q.Len(bg)
	t.Logf("received %d of %d items, %d duplicates, %d timed-out pops, %d left", received.Load(), items, dup.Load(), timeouts.Load(), n)
	if received.Load() != items || dup.Load() != 0 || n != 0 {
		t.Errorf("received %d, duplicates %d, left %d; want %d, 0, 0", received.Load(), dup.Load(), n, items)
	}
	if timeouts.Load() < 100 {
		t.Errorf("only %d pops timed out; the test did not test deadlines", timeouts.Load())
	}
}

// TestBlockingPoolLimits fills a blocking pool of 2: a third Pop waits for
// a connection within its own timeout (not go-redis's pool timeout, here
// 300 ms) and gets an item; one whose timeout passes first fails with
// ErrPoolExhausted, as does a Receive; a cancel ends the wait for a
// connection. Consume holds one blocking connection whatever its
// Concurrency: 3 handlers run on a pool of 2 while a Pop holds the other;
// above MaxConcurrency it refuses.
func TestBlockingPoolLimits(t *testing.T) {
	cl := testClient(t, "pool_timeout=300ms")
	ds := newStore(t, Options{Client: cl, BlockingPoolSize: 2})
	q := testQueue[int](t, ds, "pool")
	rq := testReliable[int](ds, "rpool", time.Second, 0)

	// Two pops hold both connections for 1s.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, ok, err := q.Pop(bg, time.Second); ok || err != nil {
				t.Errorf("holding Pop = %v, %v", ok, err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	if _, ok, err := q.Pop(bg, 300*time.Millisecond); ok || !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("Pop with every connection busy = %v, %v; want ErrPoolExhausted", ok, err)
	} else {
		t.Logf("Pop(300ms) with every connection busy: %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	if took := time.Since(start); took < 290*time.Millisecond || took > 600*time.Millisecond {
		t.Errorf("Pop(300ms) gave up after %v; want about 300ms", took)
	}
	if _, ok, err := rq.Receive(bg, 200*time.Millisecond); ok || !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("Receive with every connection busy = %v, %v; want ErrPoolExhausted", ok, err)
	}
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := q.Pop(ctx, 5*time.Second); !errors.Is(err, context.Canceled) || time.Since(start) > 300*time.Millisecond {
		t.Errorf("cancelled Pop waiting for a connection = %v after %v; want context.Canceled at once", err, time.Since(start))
	}

	// A Pop that asked for 2s gets a connection when the others time out
	// (at 1s) and the item pushed at 1.4s: go-redis alone would have
	// failed it after its pool timeout.
	time.AfterFunc(1400*time.Millisecond-time.Since(start), func() { q.Push(bg, 42) })
	v, ok, err := q.Pop(bg, 2*time.Second)
	if err != nil || !ok || v != 42 {
		t.Errorf("Pop(2s) behind a busy pool = %v, %v, %v; want 42", v, ok, err)
	}
	wg.Wait()

	if err := rq.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { q.Pop(bg, time.Second) }) // holds one blocking connection
	cctx, ccancel := context.WithTimeout(bg, 5*time.Second)
	defer ccancel()
	var running, most atomic.Int32
	var cnt Counters
	err = rq.Consume(cctx, func(context.Context, *Delivery[int]) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(200 * time.Millisecond)
		if cnt.Received.Load() == 3 {
			ccancel()
		}
		return nil
	}, ConsumeOptions{Concurrency: 3, Counters: &cnt, Logger: slog.New(slog.DiscardHandler)})
	wg.Wait()
	if err != nil || cnt.Acked.Load() != 3 || most.Load() != 3 {
		t.Errorf("Consume with Concurrency 3 on a pool of 2, one held = %v: %d acked, %d at once; want 3 and 3", err, cnt.Acked.Load(), most.Load())
	}

	err = rq.Consume(bg, func(context.Context, *Delivery[int]) error { return nil }, ConsumeOptions{Concurrency: MaxConcurrency + 1, Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Consume with Concurrency %d = %v; want ErrInvalidArgument", MaxConcurrency+1, err)
	}
}
