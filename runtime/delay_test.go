package runtime

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestNackDelayIsHonoured measures how long a nacked item takes to come
// back, against its delay of 200ms: it must be ready again no sooner, and
// received within 50ms after, by a receiver that receives after the nack,
// by one that was already waiting (on another DataStore, as in another
// process), and through Consume. Each way is measured three times: every
// time must be at least the delay (never early), and the median within
// 50ms after it, so that one round slowed by a busy machine (the race
// detector on two loaded cores) does not decide the test.
func TestNackDelayIsHonoured(t *testing.T) {
	const delay, slack = 200 * time.Millisecond, 50 * time.Millisecond
	check := func(t *testing.T, what string, took []time.Duration) {
		t.Helper()
		t.Logf("%s: back after %v", what, took)
		for _, d := range took {
			if d < delay {
				t.Errorf("%s: back after %v, before its delay of %v", what, d, delay)
			}
		}
		if len(took) != 3 {
			t.Fatalf("%s: %d measurements, want 3", what, len(took))
		}
		if m := slices.Sorted(slices.Values(took))[1]; m > delay+slack {
			t.Errorf("%s: back after %v in the median; want %v to %v", what, m, delay, delay+slack)
		}
	}

	t.Run("receive after the nack", func(t *testing.T) {
		ds := newStore(t, Options{})
		q := testReliable[int](ds, "after", 10*time.Second, 100)
		if err := q.Push(bg, 1); err != nil {
			t.Fatal(err)
		}
		d := receive(t, q, time.Second)
		var took []time.Duration
		for range 3 {
			start := time.Now()
			if err := d.Nack(bg, delay); err != nil {
				t.Fatal(err)
			}
			d = receive(t, q, 2*time.Second)
			took = append(took, time.Since(start))
		}
		check(t, "Receive", took)
	})

	t.Run("receiver already waiting", func(t *testing.T) {
		ds := newStore(t, Options{})
		other, err := New(Options{URL: redisURL, Prefix: ds.prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		q := testReliable[int](ds, "waiting", 10*time.Second, 100)
		waiter := testReliable[int](other, "waiting", 10*time.Second, 100)
		if err := q.Push(bg, 1); err != nil {
			t.Fatal(err)
		}
		var took []time.Duration
		for range 3 {
			d := receive(t, q, time.Second)
			got := make(chan time.Time, 1)
			go func() {
				if _, ok, err := waiter.Receive(bg, 3*time.Second); err != nil || !ok {
					t.Errorf("waiting Receive = %v, %v", ok, err)
				}
				got <- time.Now()
			}()
			time.Sleep(50 * time.Millisecond) // the waiter is blocked, its reclaim done
			start := time.Now()
			if err := d.Nack(bg, delay); err != nil {
				t.Fatal(err)
			}
			took = append(took, (<-got).Sub(start))
			// Put the item back for the next round.
			if err := (&Delivery[int]{ID: d.ID, Attempt: d.Attempt + 1, r: waiter.r}).Nack(bg, 0); err != nil {
				t.Fatal(err)
			}
		}
		check(t, "waiting Receive", took)
	})

	t.Run("Consume", func(t *testing.T) {
		ds := newStore(t, Options{})
		q := testReliable[int](ds, "consume", 10*time.Second, 0)
		if err := q.PushMany(bg, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		failed := map[int]time.Time{}
		var took []time.Duration
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
				mu.Lock()
				defer mu.Unlock()
				if d.Attempt == 1 {
					failed[d.Value] = time.Now() // no later than the nack
					return errors.New("once")
				}
				took = append(took, time.Since(failed[d.Value]))
				if len(took) == 3 {
					cancel()
				}
				return nil
			}, ConsumeOptions{Concurrency: 2, RetryBackoff: delay, BlockTimeout: 5 * time.Second})
		}()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Consume did not get the three items back")
		}
		mu.Lock()
		defer mu.Unlock()
		check(t, "Consume", took)
	})
}
