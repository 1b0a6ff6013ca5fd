package runtime

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

func values[T any](ds []*Delivery[T]) []T {
	vs := make([]T, len(ds))
	for i, d := range ds {
		vs[i] = d.Value
	}
	return vs
}

// TestReceiveMany leases in push order, up to n, with one receipt per take
// that the settling of its last delivery deletes; it waits for the first
// item as Receive does and takes what came with it; it refuses a count
// outside 1 to MaxReceiveBatch.
func TestReceiveMany(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "many", 0, 0)
	raw := rawClient(t)
	receipts := func() []string {
		keys, err := redistest.Keys(bg, raw, q.Key()+":rx:*")
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if err := q.PushMany(bg, 1, 2, 3, 4, 5, 6, 7); err != nil {
		t.Fatal(err)
	}
	first, err := q.ReceiveMany(bg, 4, 0)
	if err != nil || !slices.Equal(values(first), []int{1, 2, 3, 4}) {
		t.Fatalf("ReceiveMany(4) = %v, %v; want 1 2 3 4", values(first), err)
	}
	rest, err := q.ReceiveMany(bg, MaxReceiveBatch, 0)
	if err != nil || !slices.Equal(values(rest), []int{5, 6, 7}) {
		t.Fatalf("ReceiveMany(100) = %v, %v; want 5 6 7", values(rest), err)
	}
	for _, d := range append(first, rest...) {
		if d.Attempt != 1 || len(d.ID) != 26 {
			t.Errorf("delivery %+v; want attempt 1 and a random ID", d)
		}
	}
	if got := receipts(); len(got) != 2 {
		t.Fatalf("receipts after two takes: %v; want 2", got)
	}
	// The first take's receipt goes with its last delivery, by ack or
	// nack, and not before.
	for _, d := range first[:3] {
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	if got := receipts(); len(got) != 2 {
		t.Fatalf("receipts with one delivery of each take out: %v; want 2", got)
	}
	if err := first[3].Nack(bg, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := receipts(); len(got) != 1 {
		t.Fatalf("receipts after the first take's last nack: %v; want 1", got)
	}
	for _, d := range rest {
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}
	if got := receipts(); len(got) != 0 {
		t.Fatalf("receipts after every delivery was settled: %v; want none", got)
	}

	// Waiting: BLMOVE takes the first of three pushed together, and the
	// step after it the other two.
	got := make(chan []*Delivery[int], 1)
	go func() {
		ds, err := q.ReceiveMany(bg, 5, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- ds
	}()
	time.Sleep(100 * time.Millisecond)
	if err := q.PushMany(bg, 8, 9, 10); err != nil {
		t.Fatal(err)
	}
	if vs := values(<-got); !slices.Equal(vs, []int{8, 9, 10}) {
		t.Errorf("waiting ReceiveMany(5) = %v; want 8 9 10", vs)
	}
	if vs, err := q.ReceiveMany(bg, 5, 50*time.Millisecond); len(vs) != 0 || err != nil {
		t.Errorf("ReceiveMany on an empty queue = %v, %v; want nothing", vs, err)
	}
	for _, n := range []int{0, -1, MaxReceiveBatch + 1} {
		if _, err := q.ReceiveMany(bg, n, 0); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ReceiveMany(%d) = %v; want ErrInvalidArgument", n, err)
		}
	}
}

// TestReceiveManyDecodeErrors: in a batch, an item that does not decode is
// a failed delivery of its own (given back, or a dead letter after its
// last delivery), a foreign entry becomes a dead letter, and the other
// items are delivered with an error that says so.
func TestReceiveManyDecodeErrors(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "mixed", 0, 1)
	strs := testReliable[string](ds, "mixed", 0, 1)
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if err := strs.Push(bg, "not an int"); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(bg, 2); err != nil {
		t.Fatal(err)
	}
	rawClient(t).LPush(bg, q.Key(), "raw entry")
	if err := q.Push(bg, 3); err != nil {
		t.Fatal(err)
	}
	got, err := q.ReceiveMany(bg, 10, 0)
	if vs := values(got); !slices.Equal(vs, []int{1, 2, 3}) || !errors.Is(err, ErrDecode) {
		t.Fatalf("ReceiveMany over a bad payload and a foreign entry = %v, %v; want 1 2 3 and ErrDecode", vs, err)
	}
	for _, want := range []string{"delivery 1", "dead letter", "not pushed by a reliable queue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "not an int") || strings.Contains(err.Error(), "raw entry") {
		t.Errorf("error %q shows a payload", err)
	}
	if n, err := q.Dead().Len(bg); n != 2 || err != nil {
		t.Errorf("dead letters = %d, %v; want 2 (the bad payload after its one delivery, the foreign entry)", n, err)
	}
	for _, d := range got {
		if err := d.Ack(bg); err != nil {
			t.Error(err)
		}
	}
	if keys, _ := redistest.Keys(bg, rawClient(t), q.Key()+":rx:*"); len(keys) != 0 {
		t.Errorf("receipts left after every delivery was settled: %v", keys)
	}
}

// TestRetriedBatchCountsOnce runs every receive script twice, as go-redis
// does when the reply is lost: a take of many hands out the same
// deliveries, each counted once.
func TestRetriedBatchCountsOnce(t *testing.T) {
	hook := &retryReceives{}
	cl := testClient(t)
	cl.AddHook(hook)
	ds := newStore(t, Options{Client: cl})
	q := testReliable[int](ds, "retried", 0, 1)
	if err := q.PushMany(bg, 1, 2, 3, 4, 5, 6); err != nil {
		t.Fatal(err)
	}
	got, err := q.ReceiveMany(bg, 4, 0)
	if vs := values(got); err != nil || !slices.Equal(vs, []int{1, 2, 3, 4}) {
		t.Fatalf("retried ReceiveMany(4) = %v, %v; want 1 2 3 4", vs, err)
	}
	s := queueState(t, q.Key())
	for _, d := range got {
		if d.Attempt != 1 || s.Attempts[d.ID] != "1" {
			t.Errorf("item %d: attempt %d, counted %s; want 1 and 1", d.Value, d.Attempt, s.Attempts[d.ID])
		}
	}
	if len(s.Ready) != 2 || len(s.Leases) != 4 || hook.retried.Load() == 0 {
		t.Errorf("after a retried take of 4: %d ready, %d leased, %d retries; want 2, 4, some", len(s.Ready), len(s.Leases), hook.retried.Load())
	}
}

// TestReleaseGivesBackTheBatch: a take whose reply never reached its
// caller is given back whole, in its order at the front of the queue,
// uncounted, and a late run of it takes nothing.
func TestReleaseGivesBackTheBatch(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "release", 0, 0)
	if err := q.PushMany(bg, 1, 2, 3, 4, 5, 6, 7, 8); err != nil {
		t.Fatal(err)
	}
	cl, done, err := ds.Connection.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	rx := receiptKey(q.Key(), "lost")
	ls, _, _, err := q.r.take(bg, cl, rx, "", 5)
	if err != nil || len(ls) != 5 {
		t.Fatalf("take of 5 = %d, %v", len(ls), err)
	}
	if err := q.r.release(bg, cl, rx, ""); err != nil {
		t.Fatal(err)
	}
	if late, _, _, err := q.r.take(bg, cl, rx, "", 5); err != nil || len(late) != 0 {
		t.Errorf("a late run of the released take = %d items, %v; want none", len(late), err)
	}
	got, err := q.ReceiveMany(bg, 10, 0)
	if vs := values(got); err != nil || !slices.Equal(vs, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("after the release: %v, %v; want 1 … 8 in order", vs, err)
	}
	for _, d := range got {
		if d.Attempt != 1 {
			t.Errorf("item %d on delivery %d; want 1 (the released take uncounted)", d.Value, d.Attempt)
		}
	}
}

// TestAckBatch: one ack script settles deliveries of several takes, tells
// each caller its own outcome (a delivery that lost its lease to a
// reclaim, and one acked already), and leaves what it must not touch.
func TestAckBatch(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "ackbatch", 0, 0)
	if err := q.PushMany(bg, 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	a, err := q.ReceiveMany(bg, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.ReceiveMany(bg, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	// b[0] loses its lease and goes back; a[1] is acked on its own first
	// (the batch finds it gone already: 2).
	raw := rawClient(t)
	raw.ZAdd(bg, reliableKeys(q.Key())[keyLeases], redis.Z{Score: 1, Member: b[0].ID})
	if _, err := q.Reclaim(bg); err != nil {
		t.Fatal(err)
	}
	if err := a[1].Ack(bg); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(a), b...)
	hs := make([]held, len(all))
	for i, d := range all {
		hs[i] = d.settling()
	}
	res, err := q.r.ack(bg, hs)
	if want := []int64{1, 2, 0, 1, 1}; err != nil || !slices.Equal(res, want) {
		t.Fatalf("ack of 5 = %v, %v; want %v", res, err, want)
	}
	s := queueState(t, q.Key())
	if len(s.Items) != 1 || s.Items[b[0].ID] == "" || len(s.Ready) != 1 || len(s.Leases) != 0 {
		t.Errorf("after the batch ack: %+v; want only the reclaimed item, ready", s)
	}
	if keys, _ := redistest.Keys(bg, raw, q.Key()+":rx:*"); len(keys) != 0 {
		t.Errorf("receipts left: %v", keys)
	}
}

// TestConsumeBatches: Consume with 64 handlers settles 3,000 items each
// exactly once, in far fewer scripts than items (takes and acks batched),
// on a server of its own whose command counts are the test's alone.
func TestConsumeBatches(t *testing.T) {
	redistest.SingleOnly(t, "counts scripts on a server of its own")
	srv := startServer(t)
	ds := newStore(t, Options{Addr: srv.Addr, Prefix: "batches:"})
	q := testReliable[int](ds, "batches", 0, 0)
	const items = 3000
	vs := make([]int, 100)
	for i := 0; i < items; i += len(vs) {
		for j := range vs {
			vs[j] = i + j
		}
		if err := q.PushMany(bg, vs...); err != nil {
			t.Fatal(err)
		}
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	calls := func() map[string]int {
		info, err := raw.Info(bg, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for line := range strings.Lines(info) {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
			if ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				m[name] = n
			}
		}
		return m
	}
	before := calls()
	var mu sync.Mutex
	seen := map[int]int{}
	var cnt Counters
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	err := q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
		mu.Lock()
		seen[d.Value]++
		mu.Unlock()
		if cnt.Received.Load() >= items {
			go func() {
				for cnt.Acked.Load() < items && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
		}
		return nil
	}, ConsumeOptions{Concurrency: 64, Counters: &cnt, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	after := calls()
	if len(seen) != items || cnt.Acked.Load() != items || cnt.Received.Load() != items {
		t.Fatalf("handled %d distinct items, received %d, acked %d; want %d each", len(seen), cnt.Received.Load(), cnt.Acked.Load(), items)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("item %d handled %d times", v, n)
		}
	}
	scripts := after["evalsha"] + after["eval"] - before["evalsha"] - before["eval"]
	t.Logf("%d items in %d scripts", items, scripts)
	if scripts > items/4 {
		t.Errorf("%d scripts for %d items: takes and acks are not batched", scripts, items)
	}
	if st, err := q.Stats(bg); err != nil || st != (Stats{}) {
		t.Errorf("Stats after = %+v, %v; want all zero", st, err)
	}
}
