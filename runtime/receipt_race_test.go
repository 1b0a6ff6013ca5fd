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
		if len(res) == 4 && h.armed.CompareAndSwap(true, false) {
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
func TestStaleReceiptDoesNotStrand(t *testing.T) {
	hook := &lateRetryAfterReclaim{}
	cl := redis.NewClient(&redis.Options{Addr: testServerAddr(t)})
	cl.AddHook(hook)
	defer cl.Close()
	ds := newStore(t, Options{Client: cl})
	other := newStore(t, Options{Prefix: ds.prefix})
	q := testReliable[int](ds, "stale", 10*time.Second, 5)
	q2 := testReliable[int](other, "stale", 10*time.Second, 5)
	raw := rawClient(t)
	if err := q.PushMany(bg, 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Receive(bg, 0); err != nil { // nothing armed: leases 1
		t.Fatal(err)
	}
	hook.between = func() {
		// the lease of the leased item runs out and another consumer reclaims it
		keys := reliableKeys(q.Key())
		ids, _ := raw.ZRange(bg, keys[keyLeases], 0, -1).Result()
		for _, id := range ids {
			raw.ZAdd(bg, keys[keyLeases], redis.Z{Score: 1, Member: id})
		}
		if _, err := q2.Reclaim(bg); err != nil {
			t.Error(err)
		}
	}
	hook.armed.Store(true)
	start := time.Now()
	d, ok, err := q.Receive(bg, 800*time.Millisecond)
	t.Logf("Receive (1.5s) = %v, %v, %v after %v", d, ok, err, time.Since(start))
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
		t.Errorf("5 pushed, 1 acked-never, none received by anyone: all stuck until a reclaim orphan-leases them and that lease (10s) runs out")
	}
}

// A waiting Receive (C) BLMOVEs X; before its next step reaches the
// server (slow network, go-redis retrying), a reclaim orphan-leases X, that
// lease runs out, a reclaim puts X back and consumer D receives it. Then
// C's context ends and C releases X by ID: it takes D's live delivery away.
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
	keys := reliableKeys(q.Key())
	if _, err := q.Len(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	armed := new(atomic.Bool)
	armed.Store(true)
	var dD *Delivery[string]
	ds.Connection.blocking.AddHook(cancelAfterBLMOVE{armed: armed, cancel: cancel, between: func() {
		if _, err := q2.Reclaim(bg); err != nil { // orphan lease for X
			t.Error(err)
		}
		ids, _ := raw.ZRange(bg, keys[keyLeases], 0, -1).Result()
		for _, id := range ids { // ... which runs out
			raw.ZAdd(bg, keys[keyLeases], redis.Z{Score: 1, Member: id})
		}
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
	}})
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
	d3, ok, err := q2.Receive(bg, 0)
	if ok {
		t.Errorf("while D still holds its delivery (lease 10s, untouched by D), E received %q attempt %d", d3.Value, d3.Attempt)
	}
	if err := dD.Ack(bg); err != nil {
		t.Errorf("D's Ack of the delivery it did receive: %v", err)
	}
	_ = err
}

// C's receive reply is lost; its lease runs out and a reclaim puts X back;
// waiter G BLMOVEs X and a reclaim orphan-leases it before G's script runs;
// then C's retry arrives: holds() accepts the orphan lease, C gets X
// (attempt 1). G's script then leases X again (attempt 2). Two live deliveries.
// TestStaleReceiptSparesOrphan: a lost-reply retry arrives after its
// delivery was reclaimed and the ID was moved by another receiver's BLMOVE
// and orphan-leased: the retry must not hand it out (that would make two
// live deliveries), and the other receiver's step leases it.
func TestStaleReceiptSparesOrphan(t *testing.T) {
	hook := &lateRetryAfterReclaim{}
	cl := redis.NewClient(&redis.Options{Addr: testServerAddr(t)})
	cl.AddHook(hook)
	defer cl.Close()
	ds := newStore(t, Options{Client: cl})
	other := newStore(t, Options{Prefix: ds.prefix})
	q := testReliable[int](ds, "resurrect", 10*time.Second, 5)
	q2 := testReliable[int](other, "resurrect", 10*time.Second, 5)
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
		ids, _ := raw.ZRange(bg, keys[keyLeases], 0, -1).Result()
		xid = ids[0]
		raw.ZAdd(bg, keys[keyLeases], redis.Z{Score: 1, Member: xid})
		q2.Reclaim(bg)                                                      // X back to READY
		raw.LMove(bg, keys[keyReady], keys[keyProcessing], "RIGHT", "LEFT") // G's BLMOVE
		q2.Reclaim(bg)                                                      // orphan lease
	}
	hook.armed.Store(true)
	if dC, ok, err := q.Receive(bg, 0); err != nil || ok {
		t.Fatalf("C's retried receive handed out %v, %v, %v; want nothing", dC, ok, err)
	}
	cl2, rel, err := other.Connection.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	lG, okG, _, errG := q2.r.take(bg, cl2, receiptKey(q2.Key(), "G"), xid)
	if errG != nil || !okG || lG.attempt != 2 {
		t.Fatalf("G's step after its BLMOVE: %v, attempt %d, %v; want it leased, attempt 2", okG, lG.attempt, errG)
	}
}
