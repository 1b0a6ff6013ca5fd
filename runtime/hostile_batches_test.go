package runtime

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/redistest"
)

// Tests from a hostile review of the batched at-least-once queues and the
// local caches. Each states the promise it checks.

// evalOld runs a script of the release before batches (testdata/before-batches,
// prelude included) on q's keys, as a process not yet upgraded would: a
// queue it wrote lists each delivery in both PROCESSING and LEASES.
func evalOld(t *testing.T, name string, keys []string, args ...any) any {
	t.Helper()
	src, err := os.ReadFile("testdata/before-batches/" + name + ".lua")
	if err != nil {
		t.Fatal(err)
	}
	res, err := rawClient(t).Eval(bg, string(src), keys, args...).Result()
	if err != nil {
		t.Fatalf("old %s: %v", name, err)
	}
	return res
}

// TestStatsCountsOldLayoutOnce: a delivery leased by the release before
// batches is listed in both PROCESSING and LEASES; Stats.InFlight must
// still count it once.
func TestStatsCountsOldLayoutOnce(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "oldstats", 0, 0)
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	// An old consumer receives one (PROCESSING and LEASES) and runs.
	res := evalOld(t, "receive", append(reliableKeys(q.Key()), receiptKey(q.Key(), "old")), 30000, "", 1000, 60000)
	t.Logf("old receive: %v", res)
	st, err := q.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.InFlight != 1 || st.Ready != 1 {
		t.Errorf("Stats with one old-layout delivery out = %+v; want InFlight 1, Ready 1", st)
	}
}

// TestStuckHandlerItemComesBack: README "Stops on time": "A handler
// that ignores its context keeps its goroutine, and its item comes back
// after the lease", and Consume logs so. But the lease keeper stays while
// such a handler runs and goes on extending its lease, after Consume has
// returned: the item never comes back while the handler is stuck.
func TestStuckHandlerItemComesBack(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "stuck", 300*time.Millisecond, 0)
	if err := q.Push(bg, 7); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(bg)
	go func() { <-started; cancel() }()
	err := q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
		close(started)
		select { // ignores ctx; bounded
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return nil
	}, ConsumeOptions{GracePeriod: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Consume has returned. Another consumer should get the item once
	// the lease (300 ms) has run out.
	other := newStore(t, Options{Prefix: ds.prefix})
	oq := testReliable[int](other, "stuck", 300*time.Millisecond, 0)
	d, ok, err := oq.Receive(bg, 2*time.Second)
	if !ok {
		t.Fatalf("2s (6 leases) after Consume returned, the stuck handler's item has not come back (%v): its lease is still being extended", err)
	}
	if d.Value != 7 {
		t.Errorf("got %d", d.Value)
	}
}

// TestHostileIDsInBatches: IDs with the receipt's separators, NUL bytes and
// 512 bytes survive a retried take (the receipt is parsed) and a release.
func TestHostileIDsInBatches(t *testing.T) {
	hook := &retryReceives{}
	cl := testClient(t)
	cl.AddHook(hook)
	ds := newStore(t, Options{Client: cl})
	q := testReliable[int](ds, "hostile", 0, 0)
	ids := []string{"a:b", "1 2 3;", "3:abc 1 2;", "x\x00y", strings.Repeat("é", 256), ";", ":", " ", "9:", "0:"}
	for i, id := range ids {
		if err := q.PushID(bg, id, i); err != nil {
			t.Fatalf("PushID(%q): %v", id, err)
		}
	}
	got, err := q.ReceiveMany(bg, MaxReceiveBatch, 0)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("retried take = %d, %v", len(got), err)
	}
	for i, d := range got {
		if d.ID != ids[i] || d.Value != i || d.Attempt != 1 {
			t.Errorf("delivery %d = %q %d attempt %d; want %q %d 1", i, d.ID, d.Value, d.Attempt, ids[i], i)
		}
	}
	if hook.retried.Load() == 0 {
		t.Fatal("no retry")
	}
	// Release of a take with these IDs (the first run's receipt) gives
	// every one back uncounted, in order.
	for _, d := range got {
		if err := d.Nack(bg, 0); err != nil {
			t.Fatal(err)
		}
	}
	c2, done, err := ds.Connection.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	rx := receiptKey(q.Key(), "lost")
	ls, _, _, err := q.r.take(bg, c2, rx, "", MaxReceiveBatch)
	if err != nil || len(ls) != len(ids) {
		t.Fatalf("take = %d, %v", len(ls), err)
	}
	if err := q.r.release(bg, c2, rx, ""); err != nil {
		t.Fatal(err)
	}
	again, err := q.ReceiveMany(bg, MaxReceiveBatch, 0)
	if err != nil || len(again) != len(ids) {
		t.Fatalf("after release: %d, %v", len(again), err)
	}
	for i, d := range again {
		if d.ID != ids[i] || d.Attempt != 2 {
			t.Errorf("after release, delivery %d = %q attempt %d; want %q 2", i, d.ID, d.Attempt, ids[i])
		}
	}
}

// TestHugePushMany: 50,000 items in one PushMany (Lua's unpack
// limit) are stored and received once, in order.
func TestHugePushMany(t *testing.T) {
	ds := newStore(t, Options{})
	q := testReliable[int](ds, "huge", 0, 0)
	vs := make([]int, 50_000)
	for i := range vs {
		vs[i] = i
	}
	if err := q.PushMany(bg, vs...); err != nil {
		t.Fatal(err)
	}
	if err := q.PushMany(bg); err != nil {
		t.Fatal(err)
	}
	next := 0
	for range 1000 {
		ds, err := q.ReceiveMany(bg, MaxReceiveBatch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		hs := make([]held, len(ds))
		for i, d := range ds {
			if d.Value != next {
				t.Fatalf("got %d; want %d", d.Value, next)
			}
			next++
			hs[i] = d.settling()
		}
		if _, err := q.r.ack(bg, hs); err != nil {
			t.Fatal(err)
		}
	}
	if next != len(vs) {
		t.Errorf("received %d of %d", next, len(vs))
	}
}

// TestLocalCacheSilentCut: a tracking connection that dies silently
// (a NAT or firewall dropping an idle flow: no FIN, no RST reaches the
// client) loses the server's invalidations, and nothing ever notices,
// because a hit never touches the network and go-redis's sweep only sees
// a socket that closed. So an entry is served for at most localMaxAge
// after its fetch (here 1s), whatever its TTL: then it is fetched again.
func TestLocalCacheSilentCut(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	defer func(d time.Duration) { localMaxAge = d }(localMaxAge)
	localMaxAge = time.Second
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{Addr: proxy.Addr})
	c := NewCache[int](ds, localDecl(ds, "silent", NoExpiry, 100), "x")
	if err := c.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, 1)
	proxy.Blackhole(true)
	if err := rawClient(t).Set(bg, c.Key(), "2", 0).Err(); err != nil { // another client
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the invalidation is lost
	proxy.Blackhole(false)             // the network is back
	var v int
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		if v, _, err = c.Get(bg); err != nil || v == 2 {
			break
		}
	}
	if v != 2 {
		t.Errorf("3s after the network came back, Get = %d, %v; want 2 within the 1s max age", v, err)
	}
}
