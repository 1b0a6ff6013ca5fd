package runtime

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestScriptsOnMiniredis: every at-least-once script runs on miniredis (the
// demo's server): batches, extend, nack, release, reclaim, stats.
func TestScriptsOnMiniredis(t *testing.T) {
	redistest.SingleOnly(t, "miniredis")
	mr := miniredis.RunT(t)
	ds := newStore(t, Options{Addr: mr.Addr(), Prefix: "mini:"})
	q := testReliable[int](ds, "mini", time.Second, 0)
	if err := q.PushMany(bg, 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	got, err := q.ReceiveMany(bg, 4, 0)
	if err != nil || len(got) != 4 {
		t.Fatal(len(got), err)
	}
	if err := got[0].Extend(bg, time.Minute); err != nil {
		t.Fatal("extend:", err)
	}
	if err := got[1].Nack(bg, 0); err != nil {
		t.Fatal("nack:", err)
	}
	if err := got[2].Ack(bg); err != nil {
		t.Fatal("ack:", err)
	}
	if _, err := q.Reclaim(bg); err != nil {
		t.Fatal("reclaim:", err)
	}
	st, err := q.Stats(bg)
	if err != nil {
		t.Fatal("stats:", err)
	}
	if st.InFlight != 2 || st.Ready != 2 {
		t.Errorf("stats %+v", st)
	}
	cl, done, err := ds.Connection.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	rx := receiptKey(q.Key(), "x")
	if _, _, _, err := q.r.take(bg, cl, rx, "", 2); err != nil {
		t.Fatal("take:", err)
	}
	if err := q.r.release(bg, cl, rx, ""); err != nil {
		t.Fatal("release:", err)
	}
	back, err := q.ReceiveMany(bg, 10, 0)
	if err != nil || len(back) != 2 || back[0].Value != 5 || back[1].Value != 2 {
		t.Errorf("after release: %v, %v; want 5 2", values(back), err)
	}
	// A waiting receive, through BLMOVE and the take of its ID.
	go func() { time.Sleep(50 * time.Millisecond); q.PushMany(bg, 9, 10) }()
	more, err := q.ReceiveMany(bg, 10, 2*time.Second)
	if err != nil || len(more) == 0 || more[0].Value != 9 {
		t.Errorf("waiting ReceiveMany: %v, %v; want 9 first", values(more), err)
	}
}

// TestConsumeCancelStorm: Consume cancelled at random moments while
// items flow returns promptly every time; afterwards every item was acked
// exactly once or is still in the queue (nothing lost, nothing acked twice).
func TestConsumeCancelStorm(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "storm", 2*time.Second, 0)
	const items = 5000
	vs := make([]int, 100)
	for i := 0; i < items; i += 100 {
		for j := range vs {
			vs[j] = i + j
		}
		if err := q.PushMany(bg, vs...); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	acked := map[int]int{}
	for round := range 40 {
		ctx, cancel := context.WithTimeout(bg, time.Duration(1+round%7)*7*time.Millisecond)
		start := time.Now()
		err := q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			if d.Value%3 == 0 {
				if err := d.Ack(ctx); err != nil {
					return err
				}
				mu.Lock()
				acked[d.Value]++
				mu.Unlock()
				return nil
			}
			return nil
		}, ConsumeOptions{Concurrency: 64, GracePeriod: time.Second, Logger: slog.New(slog.DiscardHandler)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("round %d: Consume took %v", round, el)
		}
	}
	st, err := q.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	for v, n := range acked {
		if n != 1 {
			t.Errorf("item %d acked by its handler %d times", v, n)
		}
	}
	t.Logf("after the storm: %+v", st)
	if st.InFlight != 0 || st.Dead != 0 || st.Delayed != 0 {
		t.Errorf("after every Consume returned: %+v; want nothing in flight, delayed or dead", st)
	}
}
