package runtime

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestCancelledReceiveBeatsOrphanLease: another consumer's reclaim runs
// between a waiting Receive's BLMOVE and its lease, and its orphan rule
// leases the moved ID; the Receive's context then ends. The item must go
// back to the front of the queue uncounted at once, not sit in flight for
// a whole lease.
func TestCancelledReceiveBeatsOrphanLease(t *testing.T) {
	ds := newStore(t, Options{})
	other := newStore(t, Options{Prefix: ds.prefix})
	q := testReliable[string](ds, "orphan-race", 20*time.Second, 0)
	q2 := testReliable[string](other, "orphan-race", 20*time.Second, 0)
	if _, err := q.Len(bg); err != nil { // makes the clients
		t.Fatal(err)
	}
	ctx := cancelAfterNextBLMOVE(t, ds, q.Key(), func() {
		if _, err := q2.Reclaim(bg); err != nil {
			t.Error(err)
		}
	})
	errc := make(chan error, 1)
	go func() { _, _, err := q.Receive(ctx, 10*time.Second); errc <- err }()
	time.Sleep(100 * time.Millisecond)
	if err := q.Push(bg, "first"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive = %v, want context.Canceled", err)
	}
	if st, err := q.Stats(bg); err != nil || st.Ready != 1 || st.InFlight != 0 {
		t.Fatalf("Stats after the cancelled Receive = %+v, %v; want 1 ready, none in flight", st, err)
	}
	d, ok, err := q2.Receive(bg, time.Second)
	if err != nil || !ok || d.Value != "first" || d.Attempt != 1 {
		t.Fatalf("next Receive = %v, %v, %v; want first, attempt 1", d, ok, err)
	}
	if err := d.Ack(bg); err != nil {
		t.Fatal(err)
	}
	queueState(t, q.Key())
}

// TestStalledReceiveIsUndone: the server stalls (DEBUG SLEEP) while a
// Receive's script is on its way, the caller's context ends, and go-redis
// gives up; the server runs the script when it wakes, and counts a
// delivery that nobody got. Receive undoes it by the call's receipt, so
// with max_deliveries 1 the item is received, not dead-lettered unseen.
func TestStalledReceiveIsUndone(t *testing.T) {
	redistest.SingleOnly(t, "DEBUG SLEEP on a server of its own")
	srv := startServer(t, "--enable-debug-command", "yes")
	ds := newStore(t, Options{URL: srv.URL(0) + "?read_timeout=500ms"})
	q := testReliable[int](ds, "stalled", time.Second, 1)
	if _, _, err := q.Receive(bg, 0); err != nil { // loads the scripts
		t.Fatal(err)
	}
	if err := q.Push(bg, 42); err != nil {
		t.Fatal(err)
	}
	sleeper := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: -1, MaxRetries: -1})
	defer sleeper.Close()
	if err := sleeper.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
	go sleeper.Do(context.Background(), "DEBUG", "SLEEP", "1.2")
	time.Sleep(100 * time.Millisecond)
	rctx, cancel := context.WithTimeout(bg, 700*time.Millisecond)
	defer cancel()
	if d, ok, err := q.Receive(rctx, 0); err == nil || ok || d != nil {
		t.Fatalf("Receive during the stall = %v, %v, %v; want an error", d, ok, err)
	}
	time.Sleep(1500 * time.Millisecond) // the server woke, and a lease its script gave would have run out
	if _, err := q.Reclaim(bg); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Dead().Len(bg); err != nil || n != 0 {
		t.Fatalf("%d dead letters (%v): a delivery nobody saw was counted", n, err)
	}
	d, ok, err := q.Receive(bg, time.Second)
	if err != nil || !ok || d.Value != 42 || d.Attempt != 1 {
		t.Fatalf("Receive after the stall = %v, %v, %v; want 42, attempt 1", d, ok, err)
	}
	if err := d.Ack(bg); err != nil {
		t.Fatal(err)
	}
}

// TestLateRetryFindsItsReceipt: the reply to a receive is lost and go-redis
// sends the script again only after its read timeout, later than the
// lease (1s), with no other consumer reclaiming in between (a reclaim
// would count the delivery, the README's one exception). The receipt outlives the lease by go-redis's retry window,
// so the retry hands out the same delivery, with a lease from now, and
// counts none: with max_deliveries 1 nothing becomes a dead letter.
func TestLateRetryFindsItsReceipt(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{URL: "redis://" + proxy.Addr + "/0"})
	q := testReliable[int](ds, "late-retry", time.Second, 1)
	if _, _, err := q.Receive(bg, 0); err != nil { // loads the scripts
		t.Fatal(err)
	}
	if err := q.Push(bg, 7); err != nil {
		t.Fatal(err)
	}
	proxy.Blackhole(true)
	time.AfterFunc(2*time.Second, func() { proxy.Blackhole(false) })
	d, ok, err := q.Receive(bg, 0)
	if err != nil || !ok || d.Value != 7 || d.Attempt != 1 {
		t.Fatalf("Receive = %v, %v, %v; want 7, attempt 1", d, ok, err)
	}
	if err := d.Ack(bg); err != nil {
		t.Fatalf("Ack of the retried delivery: %v", err)
	}
	if n, err := q.Dead().Len(bg); err != nil || n != 0 {
		t.Fatalf("%d dead letters (%v)", n, err)
	}
}

// TestReceiptLifetime: a receipt lives for the lease plus go-redis's
// retry window, and ack and nack delete it, so none is left behind.
func TestReceiptLifetime(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	q := testReliable[int](ds, "receipts", 2*time.Second, 5)
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	receipts := func() []string {
		t.Helper()
		keys, err := redistest.Keys(bg, raw, q.Key()+":rx:*")
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	d1, _, err := q.Receive(bg, 0)
	if err != nil {
		t.Fatal(err)
	}
	d2, _, err := q.Receive(bg, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := receipts()
	if len(keys) != 2 {
		t.Fatalf("receipts %v, want two", keys)
	}
	want := 2*time.Second + ds.Connection.retryWindow()
	for _, k := range keys {
		if left := raw.PTTL(bg, k).Val(); left <= want-time.Second || left > want {
			t.Errorf("receipt %s lives %v more; want (%v, %v]", k, left, want-time.Second, want)
		}
	}
	if err := d1.Ack(bg); err != nil {
		t.Fatal(err)
	}
	if err := d2.Nack(bg, 0); err != nil {
		t.Fatal(err)
	}
	if keys := receipts(); len(keys) != 0 {
		t.Errorf("receipts left after ack and nack: %v", keys)
	}
}

// TestRetryWindow: the receipt's extra life is go-redis's retry window as
// the command client's options say, defaults applied (v9.23: 6s pool
// timeout, 5s dial, read and write timeouts, 3 retries, back-off up to
// 1s), a minute for a timeout turned off, and two minutes at most.
func TestRetryWindow(t *testing.T) {
	redistest.SingleOnly(t, "the retry window of one server's *redis.Client options")
	for _, tc := range []struct {
		name string
		opts *redis.Options
		want time.Duration
	}{
		{"defaults", &redis.Options{}, 4 * (6*time.Second + 5*time.Second + 5*time.Second + 5*time.Second + time.Second)},
		{"no retries", &redis.Options{MaxRetries: -1, ReadTimeout: time.Second, DialTimeout: time.Second}, 2*time.Second + time.Second + time.Second + time.Second + time.Second},
		{"no read timeout", &redis.Options{ReadTimeout: -1}, 2 * time.Minute},
		{"short", &redis.Options{ReadTimeout: 300 * time.Millisecond, DialTimeout: 200 * time.Millisecond, PoolTimeout: 400 * time.Millisecond, MaxRetries: 1, MaxRetryBackoff: 100 * time.Millisecond},
			2 * (400*time.Millisecond + 200*time.Millisecond + 300*time.Millisecond + 300*time.Millisecond + 100*time.Millisecond)},
	} {
		tc.opts.Addr = testServerAddr(t)
		cl := redis.NewClient(tc.opts)
		ds := newStore(t, Options{Client: cl})
		if err := ds.Connection.Ping(bg); err != nil { // makes the clients
			t.Fatal(err)
		}
		if got := ds.Connection.retryWindow(); got != tc.want {
			t.Errorf("%s: retry window %v, want %v", tc.name, got, tc.want)
		}
		cl.Close()
	}
}
