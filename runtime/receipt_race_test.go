package runtime

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// lateRetryAfterReclaim: the first receive script that leases runs, its
// reply is "lost", the lease runs out and a reclaim puts the item back,
// then go-redis's retry of the same script arrives.
type lateRetryAfterReclaim struct {
	armed   atomic.Bool
	between func()
}

func (h *lateRetryAfterReclaim) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lateRetryAfterReclaim) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *lateRetryAfterReclaim) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		isReceive := len(args) > 1 && (cmd.Name() == "evalsha" || cmd.Name() == "eval") && args[1] == receiveScript.shebang.Hash()
		if err := next(ctx, cmd); err != nil || !isReceive {
			return err
		}
		res, _ := cmd.(*redis.Cmd).Slice()
		if len(res) > 2 && h.armed.CompareAndSwap(true, false) { // it leased
			h.between()
			return next(ctx, cmd) // the retry
		}
		return nil
	}
}

// TestStaleReceiptDoesNotStrand: a receive's reply is lost, its delivery
// is reclaimed, and go-redis's retry then finds a receipt that no longer
// holds. The Receive must go on taking items (a receipt per take, not per
// call): no item is left in processing without a lease.
// lateRetryPair returns a DataStore whose receive scripts go through hook,
// another on the same server and prefix (another consumer), and the queue
// name on each.
func lateRetryPair(t *testing.T, name string, lease time.Duration, maxDeliveries int) (*lateRetryAfterReclaim, ReliableQueue[int], ReliableQueue[int]) {
	hook := &lateRetryAfterReclaim{}
	cl := testClient(t)
	cl.AddHook(hook)
	ds := newStore(t, Options{Client: cl})
	other := newStore(t, Options{Prefix: ds.prefix})
	return hook, testReliable[int](ds, name, lease, maxDeliveries), testReliable[int](other, name, lease, maxDeliveries)
}

// expireLeases makes every lease of the queue at key run out now, as if
// its time had passed.
func expireLeases(t *testing.T, raw redis.UniversalClient, key string) {
	t.Helper()
	leases := reliableKeys(key)[keyLeases]
	ids, err := raw.ZRange(bg, leases, 0, -1).Result()
	if err != nil {
		t.Error(err)
	}
	for _, id := range ids {
		raw.ZAdd(bg, leases, redis.Z{Score: 1, Member: id})
	}
}

func TestStaleReceiptDoesNotStrand(t *testing.T) {
	hook, q, q2 := lateRetryPair(t, "stale", 10*time.Second, 5)
	raw := rawClient(t)
	if err := q.PushMany(bg, 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Receive(bg, 0); err != nil { // nothing armed: leases 1
		t.Fatal(err)
	}
	hook.between = func() {
		// The lease of the leased item runs out and another consumer
		// reclaims it.
		expireLeases(t, raw, q.Key())
		if _, err := q2.Reclaim(bg); err != nil {
			t.Error(err)
		}
	}
	hook.armed.Store(true)
	start := time.Now()
	d, ok, err := q.Receive(bg, 800*time.Millisecond)
	t.Logf("Receive(800ms) = %v, %v, %v after %v", d, ok, err, time.Since(start))
	s := queueState(t, q.Key())
	t.Logf("state: ready %v\nprocessing %v\nleases %v\nattempts %v", s.Ready, s.Processing, s.Leases, s.Attempts)
	noLease := 0
	for _, id := range s.Processing {
		if raw.ZScore(bg, reliableKeys(q.Key())[keyLeases], id).Err() == redis.Nil {
			noLease++
		}
	}
	if !ok && noLease > 0 {
		t.Errorf("Receive got nothing but left %d items in processing without a lease, %d ready", noLease, len(s.Ready))
	}
	d2, ok2, err2 := q2.Receive(bg, 0)
	t.Logf("another consumer's Receive(0) right after: %v, %v, %v", d2, ok2, err2)
	if !ok2 {
		t.Errorf("another consumer received nothing of the 4 items still pushed: they wait for a reclaim to orphan-lease them and for that lease (10s) to run out")
	}
}

// TestLateReleaseSparesAnotherDelivery: the ID a cancelled receiver's
// BLMOVE took is orphan-leased, reclaimed and delivered to another
// consumer before the cancelled receiver's release runs: the release must
// leave that delivery alone.
func TestLateReleaseSparesAnotherDelivery(t *testing.T) {
	ds := newStore(t, Options{})
	other := newStore(t, Options{Prefix: ds.prefix})
	q := testReliable[string](ds, "undo-other", 10*time.Second, 5)
	q2 := testReliable[string](other, "undo-other", 10*time.Second, 5)
	raw := rawClient(t)
	if _, err := q.Len(bg); err != nil {
		t.Fatal(err)
	}
	var dD *Delivery[string]
	ctx := cancelAfterNextBLMOVE(t, ds, q.Key(), func() {
		if _, err := q2.Reclaim(bg); err != nil { // orphan lease for X
			t.Error(err)
		}
		expireLeases(t, raw, q.Key())             // ... which runs out
		if _, err := q2.Reclaim(bg); err != nil { // X back to READY
			t.Error(err)
		}
		d, ok, err := q2.Receive(bg, 0)
		if err != nil || !ok {
			t.Errorf("D's Receive = %v %v", ok, err)
			return
		}
		dD = d
		t.Logf("D received %q attempt %d", d.Value, d.Attempt)
	})
	errc := make(chan error, 1)
	go func() { _, _, err := q.Receive(ctx, 10*time.Second); errc <- err }()
	time.Sleep(100 * time.Millisecond)
	if err := q.Push(bg, "X"); err != nil {
		t.Fatal(err)
	}
	t.Logf("C's Receive = %v", <-errc)
	if dD == nil {
		t.Fatal("no D delivery")
	}
	s := queueState(t, q.Key())
	t.Logf("after C's release: ready %v processing %v leases %v attempts %v", s.Ready, s.Processing, s.Leases, s.Attempts)
	if d3, ok, _ := q2.Receive(bg, 0); ok {
		t.Errorf("while D still holds its delivery (lease 10s, untouched by D), E received %q attempt %d", d3.Value, d3.Attempt)
	}
	if err := dD.Ack(bg); err != nil {
		t.Errorf("D's Ack of the delivery it did receive: %v", err)
	}
}

// TestStaleReceiptSparesOrphan: a lost-reply retry arrives after its
// delivery was reclaimed and the ID was moved by another receiver's BLMOVE
// and orphan-leased: the retry must not hand it out (that would make two
// live deliveries), and the other receiver's step leases it.
func TestStaleReceiptSparesOrphan(t *testing.T) {
	hook, q, q2 := lateRetryPair(t, "resurrect", 10*time.Second, 5)
	raw := rawClient(t)
	keys := reliableKeys(q.Key())
	if _, _, err := q.Receive(bg, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := q2.Len(bg); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(bg, 7); err != nil {
		t.Fatal(err)
	}
	var xid string
	hook.between = func() {
		xid = raw.ZRange(bg, keys[keyLeases], 0, 0).Val()[0]
		expireLeases(t, raw, q.Key())
		reclaim := func() {
			if _, err := q2.Reclaim(bg); err != nil {
				t.Error(err)
			}
		}
		reclaim()                                                           // X back to READY
		raw.LMove(bg, keys[keyReady], keys[keyProcessing], "RIGHT", "LEFT") // G's BLMOVE
		reclaim()                                                           // orphan lease
	}
	hook.armed.Store(true)
	if dC, ok, err := q.Receive(bg, 0); err != nil || ok {
		t.Fatalf("C's retried receive handed out %v, %v, %v; want nothing", dC, ok, err)
	}
	cl2, rel, err := q2.r.ds.Connection.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	lG, _, _, errG := q2.r.take(bg, cl2, receiptKey(q2.Key(), "G"), xid, 1)
	if errG != nil || len(lG) != 1 || lG[0].attempt != 2 {
		t.Fatalf("G's step after its BLMOVE: %+v, %v; want it leased, attempt 2", lG, errG)
	}
}
