package runtime

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestStats puts items in every state and reads them back with Stats:
// ready, in flight, expired leases, delayed, dead, and the age of the
// oldest ready item.
func TestStats(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[string](ds, "stats", 10*time.Second, 0)
	stats := func() Stats {
		t.Helper()
		s, err := q.Stats(bg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := stats(); s != (Stats{}) {
		t.Fatalf("Stats of an empty queue = %+v", s)
	}

	// A foreign entry is a dead letter at once. Until a receive finds it,
	// it is a ready item whose age nobody knows.
	if err := rawClient(t).LPush(bg, q.Key(), "junk").Err(); err != nil {
		t.Fatal(err)
	}
	if s := stats(); s != (Stats{Ready: 1, OldestReadyUnknown: true}) {
		t.Fatalf("Stats with a foreign entry = %+v, want Ready 1 with OldestReadyUnknown", s)
	}
	if _, _, err := q.Receive(bg, 0); !errors.Is(err, ErrDecode) {
		t.Fatalf("Receive of a foreign entry = %v", err)
	}

	before := time.Now()
	if err := q.PushMany(bg, "a", "b", "c", "d", "e"); err != nil {
		t.Fatal(err)
	}
	a, b, c := receive(t, q, 0), receive(t, q, 0), receive(t, q, 0)
	if err := a.Nack(bg, time.Hour); err != nil { // delayed
		t.Fatal(err)
	}
	if err := b.Extend(bg, time.Millisecond); err != nil { // in flight, soon expired
		t.Fatal(err)
	}
	_ = c // in flight, leased
	time.Sleep(150 * time.Millisecond)
	s := stats()
	elapsed := time.Since(before)
	age := s.OldestReady
	s.OldestReady = 0
	if want := (Stats{Ready: 2, InFlight: 2, Expired: 1, Delayed: 1, Dead: 1}); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if age < 150*time.Millisecond || age > elapsed+time.Millisecond {
		t.Errorf("OldestReady = %v; want between 150ms and %v", age, elapsed)
	}
	if n, err := q.Len(bg); err != nil || n != 2 {
		t.Errorf("Len = %d, %v; want Stats.Ready, 2", n, err)
	}

	// An item nacked without delay is ready from its nack on; the oldest
	// (d) still sets the age.
	if err := c.Nack(bg, 0); err != nil {
		t.Fatal(err)
	}
	if s := stats(); s.Ready != 3 || s.InFlight != 1 || s.OldestReady < 150*time.Millisecond {
		t.Errorf("after a nack without delay: %+v", s)
	}
	// Once d and e are taken, the age is c's: it became ready just now.
	d, e := receive(t, q, 0), receive(t, q, 0)
	if d.Value != "d" || e.Value != "e" {
		t.Fatalf("received %s, %s; want d, e", d.Value, e.Value)
	}
	if s := stats(); s.Ready != 1 || s.OldestReady > 100*time.Millisecond {
		t.Errorf("with c ready again: %+v", s)
	}

	// Reclaiming the expired lease makes b ready; acking leaves nothing
	// but the delayed and the dead.
	if n, err := q.Reclaim(bg); err != nil || n != 1 {
		t.Fatalf("Reclaim = %d, %v", n, err)
	}
	for range 2 {
		if err := receive(t, q, 0).Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []*Delivery[string]{d, e} {
		if err := x.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	if s := stats(); s != (Stats{Delayed: 1, Dead: 1}) {
		t.Errorf("Stats = %+v, want only the delayed and the dead", s)
	}
	if n, err := q.Dead().Purge(bg); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	queueState(t, q.Key()) // checks the ready times against the ready list
}

// TestReleaseKeepsReadyOrder: items that BLMOVE took and that are released
// go back in the order they became ready, whatever order the releases come
// in, so the tail of the ready list is always the oldest ready item.
func TestReleaseKeepsReadyOrder(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[string](ds, "release", 10*time.Second, 0)
	raw := rawClient(t)
	k := reliableKeys(q.Key())
	for _, v := range []string{"a", "b", "c", "d"} {
		if err := q.Push(bg, v); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond) // distinct ready times
	}
	before, err := raw.LRange(bg, k[keyReady], 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Three receivers' BLMOVEs take the three oldest; they release them
	// oldest first, the worst order.
	var moved []string
	for range 3 {
		id, err := raw.LMove(bg, k[keyReady], k[keyProcessing], "RIGHT", "LEFT").Result()
		if err != nil {
			t.Fatal(err)
		}
		moved = append(moved, id)
	}
	for _, id := range moved {
		if n, err := releaseScript.run(bg, ds.Connection, raw, append(k, receiptKey(q.Key(), "unused"+id)), id, 60000).Int(); err != nil || n != 1 {
			t.Fatalf("release = %d, %v", n, err)
		}
	}
	after, err := raw.LRange(bg, k[keyReady], 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Errorf("ready list %v after the releases; want %v as before", after, before)
	}
	queueState(t, q.Key())
}
