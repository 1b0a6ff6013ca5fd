package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testReliable[T any](ds *DataStore, name string, lease time.Duration, maxDeliveries int) ReliableQueue[T] {
	return NewReliableQueue[T](ds, &QueueDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name), Lease: lease, MaxDeliveries: maxDeliveries})
}

// state is where the IDs of a reliable queue are, read behind the API.
type state struct {
	Ready, Processing, Leases, Delayed, Dead []string
	Items, Attempts, Errors, ReadyAt         map[string]string
}

func queueState(t *testing.T, key string) state {
	t.Helper()
	raw := rawClient(t)
	k := reliableKeys(key)
	var s state
	var err error
	get := func(v []string, e error) []string {
		err = errors.Join(err, e)
		if len(v) == 0 {
			return nil
		}
		slices.Sort(v)
		return v
	}
	s.Ready = get(raw.LRange(bg, k[keyReady], 0, -1).Result())
	s.Processing = get(raw.LRange(bg, k[keyProcessing], 0, -1).Result())
	s.Leases = get(raw.ZRange(bg, k[keyLeases], 0, -1).Result())
	s.Delayed = get(raw.ZRange(bg, k[keyDelayed], 0, -1).Result())
	s.Dead = get(raw.ZRange(bg, k[keyDead], 0, -1).Result())
	hash := func(key string) map[string]string {
		m, e := raw.HGetAll(bg, key).Result()
		err = errors.Join(err, e)
		return m
	}
	s.Items, s.Attempts, s.Errors, s.ReadyAt = hash(k[keyItems]), hash(k[keyAttempts]), hash(k[keyErrors]), hash(k[keyReadyAt])
	// Every ready ID that was pushed has its ready time, and only IDs that are ready, or
	// were just moved to processing by BLMOVE (and perhaps leased by a reclaim since, as
	// orphans), have one. A leased ID is not in processing.
	for _, id := range s.Ready {
		_, pushed := s.Items[id] // not an entry of a raw LPUSH
		if _, ok := s.ReadyAt[id]; !ok && pushed {
			t.Fatalf("ready ID %s has no ready time: %+v", id, s)
		}
	}
	for id := range s.ReadyAt {
		if !slices.Contains(s.Ready, id) && !slices.Contains(s.Processing, id) && !slices.Contains(s.Leases, id) {
			t.Fatalf("ID %s has a ready time but is neither ready, in processing nor leased: %+v", id, s)
		}
	}
	for _, id := range s.Processing {
		if slices.Contains(s.Leases, id) {
			t.Fatalf("ID %s is leased and still in processing: %+v", id, s)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func receive[T any](t *testing.T, q ReliableQueue[T], timeout time.Duration) *Delivery[T] {
	t.Helper()
	d, ok, err := q.Receive(bg, timeout)
	if err != nil || !ok {
		t.Fatalf("Receive = %v, %v", ok, err)
	}
	return d
}

func TestReliableLifecycle(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[payload](ds, "life", 0, 3)
	if err := q.PushMany(bg, payload{S: "a"}, payload{S: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(bg, payload{S: "c"}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(bg); err != nil || n != 3 {
		t.Fatalf("Len = %d, %v; want 3", n, err)
	}

	// Received in push order, each leased, each on its first delivery.
	var ds3 []*Delivery[payload]
	for _, want := range []string{"a", "b", "c"} {
		d := receive(t, q, time.Second)
		if d.Value.S != want || d.Attempt != 1 || len(d.ID) != 26 {
			t.Fatalf("delivery %+v, want %s on attempt 1 with a random ID", d, want)
		}
		ds3 = append(ds3, d)
	}
	s := queueState(t, q.Key())
	if len(s.Ready) != 0 || len(s.Processing) != 0 || len(s.Leases) != 3 || len(s.Items) != 3 {
		t.Fatalf("after three receives: %+v", s)
	}
	if _, ok, err := q.Receive(bg, 0); ok || err != nil {
		t.Fatalf("Receive on an empty queue = %v, %v", ok, err)
	}

	// Ack removes for good; a second ack is a lost lease.
	a, b, c := ds3[0], ds3[1], ds3[2]
	if err := a.Ack(bg); err != nil {
		t.Fatal(err)
	}
	if err := a.Ack(bg); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("second Ack = %v, want ErrLeaseLost (the delivery was settled)", err)
	}
	again := &Delivery[payload]{ID: a.ID, Attempt: a.Attempt, r: a.r}
	if err := again.Ack(bg); err != nil {
		t.Errorf("Ack of an item that is gone = %v, want nil (a retried ack)", err)
	}
	if err := a.Extend(bg, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Extend after Ack = %v, want ErrLeaseLost", err)
	}

	// Nack with a delay: delayed, then ready again after it, attempt 2.
	if err := b.Nack(bg, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if s := queueState(t, q.Key()); !slices.Equal(s.Delayed, []string{b.ID}) || s.Errors[b.ID] != "nacked by the consumer" {
		t.Fatalf("after Nack: %+v", s)
	}
	start := time.Now()
	b2 := receive(t, q, 3*time.Second)
	if took := time.Since(start); b2.ID != b.ID || b2.Attempt != 2 || took < 250*time.Millisecond {
		t.Fatalf("after Nack: got %s attempt %d after %v; want %s attempt 2 after 300ms", b2.ID, b2.Attempt, took, b.ID)
	}
	// Nack without delay: ready at once, at the back.
	if err := b2.Nack(bg, 0); err != nil {
		t.Fatal(err)
	}
	b3 := receive(t, q, 0)
	if b3.ID != b.ID || b3.Attempt != 3 {
		t.Fatalf("got %s attempt %d, want %s attempt 3", b3.ID, b3.Attempt, b.ID)
	}
	// The third failed delivery of three makes a dead letter.
	if err := b3.Nack(bg, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Extend(bg, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(bg); err != nil {
		t.Fatal(err)
	}

	s = queueState(t, q.Key())
	want := state{Dead: []string{b.ID}, Items: map[string]string{b.ID: `{"s":"b","b":false,"i":0,"i32":0,"i64":0,"u32":0,"u64":0,"f32":0,"f64":0,"raw":null,"at":"0001-01-01T00:00:00Z","any":null,"list":null,"map":null,"deep":null}`},
		Attempts: map[string]string{b.ID: "3"}, Errors: map[string]string{b.ID: "nacked by the consumer"}, ReadyAt: map[string]string{}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("final state (-want +got):\n%s", diff)
	}

	dead := q.Dead()
	if n, err := dead.Len(bg); err != nil || n != 1 {
		t.Fatalf("Dead().Len = %d, %v", n, err)
	}
	letters, err := dead.Peek(bg, 10)
	if err != nil || len(letters) != 1 {
		t.Fatalf("Peek = %v, %v", letters, err)
	}
	l := letters[0]
	if l.ID != b.ID || l.Value.S != "b" || l.DecodeErr != nil || l.Attempts != 3 || l.LastError != "nacked by the consumer" || time.Since(l.Time).Abs() > time.Minute {
		t.Errorf("dead letter %+v", l)
	}
	if n, err := dead.Requeue(bg, 5); err != nil || n != 1 {
		t.Fatalf("Requeue = %d, %v", n, err)
	}
	b4 := receive(t, q, 0)
	if b4.ID != b.ID || b4.Attempt != 1 || b4.Value.S != "b" {
		t.Fatalf("requeued item: %s attempt %d %q", b4.ID, b4.Attempt, b4.Value.S)
	}
	if err := b4.Ack(bg); err != nil {
		t.Fatal(err)
	}
	s = queueState(t, q.Key())
	if diff := cmp.Diff(state{Items: map[string]string{}, Attempts: map[string]string{}, Errors: map[string]string{}, ReadyAt: map[string]string{}}, s); diff != "" {
		t.Errorf("empty queue state (-want +got):\n%s", diff)
	}
}

func TestPushIDStoresOnce(t *testing.T) {
	ds := newStore(t, Options{})
	q := NewReliableQueue[int](ds, &QueueDecl{Name: "ids", Prefix: ds.prefix, Key: MustKeyPattern("ids"), DedupeWindow: 500 * time.Millisecond})
	for i := range 3 {
		if err := q.PushID(bg, "job-{42}", i); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := q.Len(bg); n != 1 {
		t.Fatalf("Len after three PushID = %d, want 1", n)
	}
	d := receive(t, q, 0)
	if d.ID != "job-{42}" || d.Value != 0 {
		t.Fatalf("delivery %s %d", d.ID, d.Value)
	}
	// The marker's key escapes the braces, so the hash tag stays the queue's.
	raw := rawClient(t)
	marker := q.Key() + ":id:job-%7B42%7D"
	if ttl, err := raw.PTTL(bg, marker).Result(); err != nil || ttl <= 0 || ttl > 500*time.Millisecond {
		t.Fatalf("marker %s PTTL = %v, %v", marker, ttl, err)
	}
	// In flight, or acked within the window: still stored once.
	if err := q.PushID(bg, "job-{42}", 9); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(bg); err != nil {
		t.Fatal(err)
	}
	if err := q.PushID(bg, "job-{42}", 9); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Len(bg); n != 0 {
		t.Fatalf("Len after pushes within the window = %d, want 0", n)
	}
	// After the window it is a new item.
	time.Sleep(600 * time.Millisecond)
	if err := q.PushID(bg, "job-{42}", 7); err != nil {
		t.Fatal(err)
	}
	if d := receive(t, q, 0); d.ID != "job-{42}" || d.Value != 7 {
		t.Fatalf("delivery after the window %s %d", d.ID, d.Value)
	}
	for _, id := range []string{"", strings.Repeat("x", MaxIDBytes+1)} {
		if err := q.PushID(bg, id, 1); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("PushID(%d bytes) = %v, want ErrInvalidArgument", len(id), err)
		}
	}
}

func TestReliableArguments(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "args", 0, 0)
	if _, _, err := q.Receive(bg, -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Receive(-1s) = %v", err)
	}
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	d := receive(t, q, 0)
	if err := d.Nack(bg, -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Nack(-1s) = %v", err)
	}
	if err := d.Extend(bg, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Extend(0) = %v", err)
	}
	if _, err := q.Dead().Peek(bg, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Peek(0) = %v", err)
	}
	if err := q.Consume(bg, nil, ConsumeOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Consume(nil handler) = %v", err)
	}
	if err := q.Consume(bg, func(context.Context, *Delivery[int]) error { return nil }, ConsumeOptions{Concurrency: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Consume(Concurrency -1) = %v", err)
	}
	bad := NewReliableQueue[int](ds, &QueueDecl{Name: "bad", Key: MustKeyPattern("bad:{id}"), Lease: -time.Second})
	if err := bad.Push(bg, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Push on a queue with a bad declaration = %v", err)
	}
	if _, _, err := NewReliableQueue[int](nil, &QueueDecl{Name: "nil", Key: MustKeyPattern("nil")}).Receive(bg, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Receive with a nil DataStore = %v", err)
	}
}

func TestReceiveTimeoutAndCancel(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "wait", 0, 0)
	if _, _, err := q.Receive(bg, 10*time.Millisecond); err != nil { // warm the pools
		t.Fatal(err)
	}
	before := goruntime.NumGoroutine()
	start := time.Now()
	if _, ok, err := q.Receive(bg, 200*time.Millisecond); ok || err != nil {
		t.Fatalf("Receive on an empty queue = %v, %v", ok, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 400*time.Millisecond {
		t.Errorf("a 200ms Receive took %v", took)
	}

	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := q.Receive(ctx, 2*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Receive = %v", err)
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("cancelled Receive returned after %v; want about 100ms", took)
	}
	waitGoroutines(t, before)

	// An item that arrives while a Receive waits is handed out by it.
	time.AfterFunc(100*time.Millisecond, func() { q.Push(bg, 5) })
	if d := receive(t, q, 2*time.Second); d.Value != 5 {
		t.Fatalf("got %d", d.Value)
	}
}

// TestReceiveCancelNeverLosesItems is TestCancelNeverLosesItems for
// Receive: 5,000 items, receivers cancelled at random moments, each item
// acked exactly once and never delivered twice: a cancel must never
// abandon a BLMOVE whose item the server already moved.
func TestReceiveCancelNeverLosesItems(t *testing.T) {
	const items, consumers = 5_000, 8
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "cancels", 0, 0)

	var seen sync.Map
	var acked, cancels, dup atomic.Int64
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
				ctx, cancel := context.WithTimeout(bg, time.Duration(rng.IntN(5000))*time.Microsecond)
				d, ok, err := q.Receive(ctx, 50*time.Millisecond)
				cancel()
				switch {
				case errors.Is(err, context.DeadlineExceeded):
					cancels.Add(1)
					continue
				case err != nil:
					t.Error(err)
					return
				case !ok:
					continue
				}
				if _, loaded := seen.LoadOrStore(d.Value, true); loaded || d.Attempt != 1 {
					dup.Add(1)
				}
				if err := d.Ack(bg); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	trickle(t, items, 2*time.Millisecond, q.PushMany, &acked)
	close(done)
	wg.Wait()
	s := queueState(t, q.Key())
	t.Logf("acked %d of %d items, %d redelivered, %d cancelled receives", acked.Load(), items, dup.Load(), cancels.Load())
	if acked.Load() != items || dup.Load() != 0 || len(s.Items) != 0 || len(s.Processing) != 0 {
		t.Errorf("acked %d, redelivered %d, left %d (%d in processing); want %d, 0, 0, 0", acked.Load(), dup.Load(), len(s.Items), len(s.Processing), items)
	}
	if cancels.Load() < 100 {
		t.Errorf("only %d receives were cancelled; the test did not test cancellation", cancels.Load())
	}
}

func TestLeaseRunsOut(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[string](ds, "lease", 200*time.Millisecond, 2)
	if err := q.Push(bg, "x"); err != nil {
		t.Fatal(err)
	}
	first := receive(t, q, 0)
	// Not acked: it comes back after its lease, to a Receive that waits.
	second := receive(t, q, 3*time.Second)
	if second.ID != first.ID || second.Attempt != 2 {
		t.Fatalf("got %s attempt %d, want %s attempt 2", second.ID, second.Attempt, first.ID)
	}
	if err := first.Ack(bg); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("late Ack = %v, want ErrLeaseLost", err)
	}
	if err := first.Extend(bg, time.Second); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("late Extend = %v, want ErrLeaseLost", err)
	}
	// The second delivery was the last: when its lease runs out too, the
	// item is a dead letter with that as its error.
	time.Sleep(250 * time.Millisecond)
	n, err := q.Reclaim(bg)
	if err != nil || n != 1 {
		t.Fatalf("Reclaim = %d, %v; want 1", n, err)
	}
	letters, err := q.Dead().Peek(bg, 1)
	if err != nil || len(letters) != 1 || letters[0].LastError != "lease ran out during delivery 2" || letters[0].Attempts != 2 {
		t.Fatalf("dead letters %+v, %v", letters, err)
	}
	if err := second.Ack(bg); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Ack of a dead item = %v, want ErrLeaseLost", err)
	}
	if n, err := q.Dead().Purge(bg); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if s := queueState(t, q.Key()); len(s.Items)+len(s.Dead)+len(s.Attempts)+len(s.Errors) != 0 {
		t.Errorf("after Purge: %+v", s)
	}
}

// TestExtendKeepsTheLease extends a short lease past its end: nothing is
// reclaimed, and Ack still works.
func TestExtendKeepsTheLease(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[string](ds, "extend", 200*time.Millisecond, 0)
	if err := q.Push(bg, "x"); err != nil {
		t.Fatal(err)
	}
	d := receive(t, q, 0)
	for range 4 {
		time.Sleep(100 * time.Millisecond)
		if err := d.Extend(bg, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if n, err := q.Reclaim(bg); err != nil || n != 0 {
			t.Fatalf("Reclaim = %d, %v; want 0", n, err)
		}
	}
	if err := d.Ack(bg); err != nil {
		t.Fatal(err)
	}
}

// TestOrphanInProcessing leaves an item in processing without a lease, as
// a consumer killed between BLMOVE and the lease script does: a reclaim
// gives it a lease, and when that runs out it is ready again, its
// delivery count untouched.
func TestOrphanInProcessing(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[string](ds, "orphan", 200*time.Millisecond, 0)
	if err := q.Push(bg, "x"); err != nil {
		t.Fatal(err)
	}
	k := reliableKeys(q.Key())
	raw := rawClient(t)
	id, err := raw.LMove(bg, k[keyReady], k[keyProcessing], "RIGHT", "LEFT").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := q.Reclaim(bg); err != nil || n != 0 {
		t.Fatalf("Reclaim = %d, %v", n, err)
	}
	if s := queueState(t, q.Key()); !slices.Equal(s.Leases, []string{id}) {
		t.Fatalf("after the first reclaim: %+v", s)
	}
	d := receive(t, q, 3*time.Second)
	if d.ID != id || d.Attempt != 1 {
		t.Fatalf("got %s attempt %d, want %s attempt 1", d.ID, d.Attempt, id)
	}
	if err := d.Ack(bg); err != nil {
		t.Fatal(err)
	}
}

// TestForeignEntry pushes a raw entry to a reliable queue's ready list:
// Receive keeps it as a dead letter (with itself as payload) and says so.
func TestForeignEntry(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "foreign", 0, 0)
	raw := rawClient(t)
	if err := raw.LPush(bg, q.Key(), `{"legacy":true}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(bg, 7); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.Receive(bg, 0); ok || !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "not pushed by a reliable queue") {
		t.Fatalf("Receive of a foreign entry = %v, %v", ok, err)
	}
	if d := receive(t, q, 0); d.Value != 7 {
		t.Fatalf("next item %d", d.Value)
	}
	letters, err := q.Dead().Peek(bg, 5)
	if err != nil || len(letters) != 1 || string(letters[0].Payload) != `{"legacy":true}` || letters[0].DecodeErr == nil || !strings.HasPrefix(letters[0].ID, "foreign-") {
		t.Fatalf("dead letters %+v, %v", letters, err)
	}
}

// TestReclaimersRace runs 8 reclaimers at once on one expired item, 1,000
// times: it is put back exactly once every time. Reclaiming is one script
// on the server's clock precisely so that racing reclaimers cannot both
// requeue an item.
func TestReclaimersRace(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "reap", time.Millisecond, 1_000_000)
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	k := reliableKeys(q.Key())
	raw := rawClient(t)
	total := 0
	for round := range 1000 {
		if d := receive(t, q, time.Second); d.Value != 1 {
			t.Fatalf("round %d: got %d", round, d.Value)
		}
		time.Sleep(2 * time.Millisecond) // the 1ms lease runs out
		var wg sync.WaitGroup
		counts := make([]int, 8)
		for i := range counts {
			wg.Go(func() {
				n, err := q.Reclaim(bg)
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			})
		}
		wg.Wait()
		sum := 0
		for _, n := range counts {
			sum += n
		}
		// Receive reclaims too (it found the item ready, or put it back
		// itself); either way, there is one copy, ready.
		ready, err := raw.LLen(bg, k[keyReady]).Result()
		if err != nil || ready != 1 || sum > 1 {
			t.Fatalf("round %d: %d reclaimed, %d ready (%v); want at most 1 and 1", round, sum, ready, err)
		}
		total += sum
	}
	t.Logf("8 reclaimers × 1000 rounds: the item was put back %d times by a Reclaim (otherwise by Receive's own reclaim), never twice in a round", total)
}

// TestAckRacesReclaim acks an item just as its lease runs out and a
// reclaim runs, 1,000 times: either the ack wins and the item is gone, or
// the reclaim wins and the ack reports ErrLeaseLost; never both, never
// neither.
func TestAckRacesReclaim(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "ackrace", time.Millisecond, 1_000_000)
	k := reliableKeys(q.Key())
	raw := rawClient(t)
	var ackWon, reclaimWon int
	for round := range 1000 {
		if err := q.Push(bg, round); err != nil {
			t.Fatal(err)
		}
		d := receive(t, q, time.Second)
		time.Sleep(time.Millisecond)
		var ackErr error
		var wg sync.WaitGroup
		wg.Go(func() { ackErr = d.Ack(bg) })
		wg.Go(func() {
			if _, err := q.Reclaim(bg); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		ready, err := raw.LLen(bg, k[keyReady]).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ackErr == nil && ready == 0:
			ackWon++
		case errors.Is(ackErr, ErrLeaseLost) && ready == 1:
			reclaimWon++
			d := receive(t, q, 0)
			if err := d.Ack(bg); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("round %d: Ack = %v with %d ready", round, ackErr, ready)
		}
	}
	t.Logf("ack won %d rounds, reclaim won %d", ackWon, reclaimWon)
	if s := queueState(t, q.Key()); len(s.Items)+len(s.Processing)+len(s.Leases) != 0 {
		t.Errorf("left behind: %+v", s)
	}
}

// TestPoisonNeverBlocks pushes payloads that cannot be decoded beside good
// items, and a handler fails every delivery of one good item: those three
// become dead letters after max_deliveries with their last error, and
// every other item is acked: a poison message never loops forever or
// holds up the rest.
func TestPoisonNeverBlocks(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[payload](ds, "poison", 0, 3)
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprint("good-", i))
		if err := q.PushID(bg, ids[i], payload{I: i}); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			if err := q.r.push(bg, []string{"dup-name", "bad-utf8"}, [][]byte{[]byte(`{"a":1,"a":2}`), []byte("\"\xff\"")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var cnt Counters
	var handled sync.Map
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[payload]) error {
			if d.ID == "good-3" {
				return fmt.Errorf("flow %d is broken", d.Value.I)
			}
			handled.Store(d.ID, d.Attempt)
			return nil
		}, ConsumeOptions{Concurrency: 4, RetryBackoff: 10 * time.Millisecond, Counters: &cnt})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for cnt.Acked.Load() < 19 || cnt.DeadLettered.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("acked %d, dead %d after 20s", cnt.Acked.Load(), cnt.DeadLettered.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	letters, err := q.Dead().Peek(bg, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range letters {
		if l.Attempts != 3 {
			t.Errorf("dead letter %s had %d deliveries, want 3", l.ID, l.Attempts)
		}
		got[l.ID] = l.LastError
	}
	want := map[string]string{
		"dup-name": "decode runtime.payload: at /*: duplicate object member name at byte offset 7",
		"bad-utf8": "decode runtime.payload: invalid UTF-8 at byte offset 1",
		"good-3":   "flow 3 is broken",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	for _, id := range ids {
		if _, ok := handled.Load(id); !ok && id != "good-3" {
			t.Errorf("%s was never handled", id)
		}
	}
	if r, a, n := cnt.Received.Load(), cnt.Acked.Load(), cnt.Nacked.Load(); r != 22 || a != 19 || n != 9 {
		t.Errorf("counters: received %d, acked %d, nacked %d; want 22, 19, 9", r, a, n)
	}
}

// TestConsumeRetriesPanicsAndKeepsLeases: a panic is a failed delivery
// with the panic in its error; a handler that works for longer than the
// lease keeps it.
func TestConsumeRetriesPanicsAndKeepsLeases(t *testing.T) {
	ds := newStore(t, Options{})
	// A lease of 1s, extended every third of it: short enough that the
	// slow handler outlives it twice, long enough that a loaded machine
	// (the race detector on two busy cores) gets every extension in.
	q := testReliable[string](ds, "panics", time.Second, 0)
	if err := q.PushMany(bg, "panic", "slow"); err != nil {
		t.Fatal(err)
	}
	var cnt Counters
	var mu sync.Mutex
	attempts := map[string][]int{}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[string]) error {
			mu.Lock()
			attempts[d.Value] = append(attempts[d.Value], d.Attempt)
			mu.Unlock()
			switch {
			case d.Value == "panic" && d.Attempt == 1:
				panic("boom")
			case d.Value == "slow":
				select { // two and a half leases long
				case <-time.After(2500 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}, ConsumeOptions{Concurrency: 2, RetryBackoff: 10 * time.Millisecond, Counters: &cnt})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for cnt.Acked.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string][]int{"panic": {1, 2}, "slow": {1}}, attempts); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if a, n, r := cnt.Acked.Load(), cnt.Nacked.Load(), cnt.Reclaimed.Load(); a != 2 || n != 1 || r != 0 {
		t.Errorf("acked %d, nacked %d, reclaimed %d; want 2, 1, 0", a, n, r)
	}
}

// TestConsumeStops cancels Consume while handlers run: those that finish
// within the grace period are acked, Consume returns within the grace
// period plus 100ms, and no goroutine is left. A handler that outlives the
// grace period has its ctx cancelled, and its item comes back after its
// lease.
func TestConsumeStops(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "stop", time.Second, 0)
	if _, _, err := q.Receive(bg, 0); err != nil { // warm the pools
		t.Fatal(err)
	}
	before := goruntime.NumGoroutine()
	// Three quick handlers, one that outlives the grace period (ms).
	if err := q.PushMany(bg, 100, 150, 200, 10_000); err != nil {
		t.Fatal(err)
	}
	var cnt Counters
	var running sync.WaitGroup
	running.Add(4)
	var cancelled atomic.Int64
	ctx, cancel := context.WithCancel(bg)
	const grace = 400 * time.Millisecond
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			running.Done()
			select {
			case <-time.After(time.Duration(d.Value) * time.Millisecond):
				return nil
			case <-ctx.Done():
				cancelled.Add(1)
				return ctx.Err()
			}
		}, ConsumeOptions{Concurrency: 4, GracePeriod: grace, Counters: &cnt})
	}()
	running.Wait()
	cancel()
	start := time.Now()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Consume returned %v after its ctx ended (grace %v)", took, grace)
	if took > grace+100*time.Millisecond {
		t.Errorf("Consume returned %v after its ctx ended; want at most %v", took, grace+100*time.Millisecond)
	}
	if a, c := cnt.Acked.Load(), cancelled.Load(); a != 3 || c != 1 {
		t.Errorf("acked %d, cancelled %d; want 3 and 1", a, c)
	}
	waitGoroutines(t, before)

	// The unfinished item comes back after its lease, on its second delivery.
	d := receive(t, q, 3*time.Second)
	if d.Value != 10_000 || d.Attempt != 2 {
		t.Errorf("got %v attempt %d", d.Value, d.Attempt)
	}
}

// TestConsumeReturnsWhenClosed: closing the DataStore ends Consume with
// ErrClosed.
func TestConsumeReturnsWhenClosed(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "closed", 0, 0)
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(bg, func(context.Context, *Delivery[int]) error { return nil }, ConsumeOptions{Concurrency: 3})
	}()
	time.Sleep(100 * time.Millisecond)
	ds.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Consume = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Consume did not return after Close")
	}
}

// TestRetryDelays checks the two schedules of Consume without waiting for
// them: the nack delay doubles per delivery up to its cap, and receive
// retries after server errors, however many receivers fail at once, are
// at least 50ms apart (at most 20 a second) and back off to 1s.
func TestRetryDelays(t *testing.T) {
	opts := ConsumeOptions{RetryBackoff: time.Second, MaxRetryBackoff: 5 * time.Second}
	if err := opts.fill(); err != nil {
		t.Fatal(err)
	}
	c := &consumer[int]{opts: opts}
	var got []time.Duration
	for attempt := 1; attempt <= 6; attempt++ {
		got = append(got, c.backoff(attempt))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nack delays by delivery (-want +got):\n%s", diff)
	}

	// 16 receivers fail at the same moment, 5 times each (at one fixed
	// time: on a loaded machine, time.Now moved between the calls and
	// start plus each wait made slots closer than the gate made them).
	var g retryGate
	start := time.Now()
	var slots []time.Time
	for range 5 {
		for range 16 {
			slots = append(slots, start.Add(g.failedAt(start)))
		}
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(slots); i++ {
		if gap := slots[i].Sub(slots[i-1]); gap < minRetryGap-time.Millisecond {
			t.Fatalf("retries %d and %d are %v apart; want at least %v", i-1, i, gap, minRetryGap)
		}
	}
	if g.delay != maxRetryDelay {
		t.Errorf("delay after 80 failures in a row = %v, want %v", g.delay, maxRetryDelay)
	}
	g.succeeded()
	if d := g.failed(); g.delay != minRetryGap || d < 0 {
		t.Errorf("after a success the delay starts again at %v (got %v, wait %v)", minRetryGap, g.delay, d)
	}
}

// TestConsumeCountsReclaims: an item whose lease ran out is reclaimed by
// Consume, which counts it, handles it on its second delivery and acks it.
func TestConsumeCountsReclaims(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "counts", 200*time.Millisecond, 0)
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	receive(t, q, 0) // and never acked: a consumer that died
	time.Sleep(250 * time.Millisecond)

	var cnt Counters
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			if d.Attempt != 2 {
				t.Errorf("delivery %d, want 2", d.Attempt)
			}
			cancel()
			return nil
		}, ConsumeOptions{Counters: &cnt})
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	got := []int64{cnt.Received.Load(), cnt.Acked.Load(), cnt.Nacked.Load(), cnt.DeadLettered.Load(), cnt.Reclaimed.Load()}
	if diff := cmp.Diff([]int64{1, 1, 0, 0, 1}, got); diff != "" {
		t.Errorf("received, acked, nacked, dead-lettered, reclaimed (-want +got):\n%s", diff)
	}
}
