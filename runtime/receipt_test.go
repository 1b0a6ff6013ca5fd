package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// retryReceives is a go-redis hook that runs every receive script twice
// and hands back only the second reply: what go-redis does when the first
// reply is lost (it sends the same command again on a new connection).
type retryReceives struct{ retried atomic.Int64 }

func (h *retryReceives) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *retryReceives) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *retryReceives) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		// EVAL carries the source, not the hash: it is what a server that
		// did not know the script yet (a fresh one) gets after NOSCRIPT.
		src, _ := scriptSource("receive")
		isReceive := len(args) > 1 && (cmd.Name() == "evalsha" && args[1] == receiveScript.shebang.Hash() ||
			cmd.Name() == "eval" && args[1] == src)
		if err := next(ctx, cmd); err != nil || !isReceive {
			return err
		}
		h.retried.Add(1)
		return next(ctx, cmd)
	}
}

// TestRetriedReceiveCountsOnce runs every receive script twice, as
// go-redis does when the reply is lost, on both ways Receive leases: an
// item that is ready (one script), and one that arrives while Receive
// waits (BLMOVE, then the script for the moved ID). The second run
// returns the same delivery: attempt 1, one item in flight, the other
// still ready.
func TestRetriedReceiveCountsOnce(t *testing.T) {
	hook := &retryReceives{}
	cl := testClient(t)
	cl.AddHook(hook)
	ds := newStore(t, Options{Client: cl})
	q := testReliable[int](ds, "retried", 5*time.Second, 1)

	check := func(how string, d *Delivery[int], want int) {
		t.Helper()
		if d.Value != want || d.Attempt != 1 {
			t.Errorf("%s: Receive = %d attempt %d; want %d attempt 1", how, d.Value, d.Attempt, want)
		}
		s, err := q.Stats(bg)
		if err != nil || s.InFlight != 1 || s.Ready != 1 {
			t.Errorf("%s: Stats = %+v, %v; want 1 in flight, 1 ready (a second run leased another item)", how, s, err)
		}
		if n, _ := rawClient(t).HGet(bg, reliableKeys(q.Key())[keyAttempts], d.ID).Int(); n != 1 {
			t.Errorf("%s: %d deliveries counted; want 1", how, n)
		}
		if err := d.Ack(bg); err != nil {
			t.Errorf("%s: Ack = %v", how, err)
		}
	}

	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	check("item ready", receive(t, q, 0), 1)

	// The second item is still ready: take it out of the way, then wait
	// for one pushed while Receive waits.
	if d := receive(t, q, 0); d.Ack(bg) != nil {
		t.Fatal("ack")
	}
	if err := q.Push(bg, 9); err != nil { // stays ready, for the Stats check
		t.Fatal(err)
	}
	if d := receive(t, q, 0); d.Value != 9 {
		t.Fatal("wrong item")
	} else {
		defer d.Ack(bg)
	}
	time.AfterFunc(100*time.Millisecond, func() { q.PushMany(bg, 3) })
	d := receive(t, q, 2*time.Second)
	if d.Value != 3 || d.Attempt != 1 {
		t.Errorf("after BLMOVE: Receive = %d attempt %d; want 3 attempt 1", d.Value, d.Attempt)
	}
	if n, _ := rawClient(t).HGet(bg, reliableKeys(q.Key())[keyAttempts], d.ID).Int(); n != 1 {
		t.Errorf("after BLMOVE: %d deliveries counted; want 1", n)
	}
	if err := d.Ack(bg); err != nil {
		t.Errorf("after BLMOVE: Ack = %v", err)
	}
	if hook.retried.Load() < 3 {
		t.Errorf("only %d receive scripts were run twice", hook.retried.Load())
	}
	// Ack and nack delete the receipts; none is left but that of 9.
	keys, _ := redistest.Keys(bg, rawClient(t), q.Key()+":rx:*")
	if len(keys) != 1 {
		t.Errorf("receipts left: %q; want only the one of the delivery still in flight", keys)
	}
}

// TestReceiveReplyLost drops the reply to a receive through the in-test
// proxy and closes the connection: go-redis sends the script again on a
// new connection, and the same delivery comes back, counted once.
func TestReceiveReplyLost(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{Addr: proxy.Addr, PoolSize: 1})
	q := testReliable[int](ds, "lost", 5*time.Second, 1)
	// Receive reclaims first, at most twice a lease: have it done now,
	// so that the lost reply is that of the receive script.
	if _, _, err := q.Receive(bg, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	proxy.DropNextReply()
	d, ok, err := q.Receive(bg, 0)
	if err != nil || !ok {
		t.Fatalf("Receive with a lost reply = %v, %v; want go-redis to retry it", ok, err)
	}
	if proxy.Dropped() != 1 {
		t.Fatalf("%d replies dropped, want 1", proxy.Dropped())
	}
	s := queueState(t, q.Key())
	t.Logf("after a lost receive reply: delivery %d attempt %d; %d in flight, %d ready", d.Value, d.Attempt, len(s.Leases), len(s.Ready))
	if d.Value != 1 || d.Attempt != 1 || len(s.Leases) != 1 || len(s.Processing) != 0 || len(s.Ready) != 1 || s.Attempts[d.ID] != "1" {
		t.Errorf("after a lost receive reply: delivery %d attempt %d, state %+v; want item 1, attempt 1, one in flight, one ready", d.Value, d.Attempt, s)
	}
}

// TestClientKillsCountOnlyHandedDeliveries pushes 2,000 items to a server
// of its own and receives them with 4 receivers while every client
// connection is killed (CLIENT KILL) every 2–10 ms for 3 s: go-redis
// retries the commands whose replies were lost. Every item must be acked,
// and every delivery the server counted must have been handed to a
// caller: an item's attempts, as handed out, are 1, 2, … with no gap.
func TestClientKillsCountOnlyHandedDeliveries(t *testing.T) {
	redistest.SingleOnly(t, "CLIENT KILL on a server of its own")
	const items, receivers = 2000, 4
	srv := startServer(t)
	killer := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer killer.Close()
	ds := newStore(t, Options{URL: srv.URL(0), Prefix: "kills:"})
	q := NewReliableQueue[int](ds, &QueueDecl{Name: "kills", Prefix: "kills:", Key: MustKeyPattern("kills"),
		Lease: time.Second, MaxDeliveries: 1000})
	for i := 0; i < items; i += 100 {
		batch := make([]int, 100)
		for j := range batch {
			batch[j] = i + j
		}
		if err := q.PushMany(bg, batch...); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	handed := map[string][]int{} // ID → attempts handed to a caller, in order
	var acked, errs atomic.Int64
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var wg sync.WaitGroup
	for range receivers {
		wg.Go(func() {
			for ctx.Err() == nil {
				d, ok, err := q.Receive(ctx, 200*time.Millisecond)
				if err != nil {
					errs.Add(1)
					continue
				}
				if !ok {
					continue
				}
				mu.Lock()
				handed[d.ID] = append(handed[d.ID], d.Attempt)
				mu.Unlock()
				if d.Ack(bg) == nil {
					acked.Add(1)
				}
			}
		})
	}
	kills := 0
	rng := rand.New(rand.NewPCG(7, 7))
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		time.Sleep(time.Duration(2000+rng.IntN(8000)) * time.Microsecond)
		n, err := killer.ClientKillByFilter(bg, "TYPE", "normal", "SKIPME", "yes").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			kills++
		}
	}
	// Then let the receivers finish: items whose ack was lost come back
	// after their lease.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s, err := q.Stats(bg)
		if err == nil && s.Ready+s.InFlight+s.Delayed == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	deliveries, gaps := 0, 0
	var gapped []string
	for id, attempts := range handed {
		deliveries += len(attempts)
		for i, a := range attempts {
			if a != i+1 {
				gaps++
				gapped = append(gapped, fmt.Sprintf("%s: %v", id, attempts))
				break
			}
		}
	}
	s, _ := q.Stats(bg)
	t.Logf("%d items, %d kills: %d deliveries handed, %d items acked, %d receive errors, %d items with a delivery counted but never handed; stats %+v",
		items, kills, deliveries, acked.Load(), errs.Load(), gaps, s)
	if len(handed) != items || s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("%d of %d items handed, stats %+v; want all, and none left", len(handed), items, s)
	}
	if gaps != 0 {
		t.Errorf("%d items had deliveries counted that no caller got: %s", gaps, strings.Join(gapped[:min(len(gapped), 5)], "; "))
	}
	if kills < 100 {
		t.Errorf("only %d kills", kills)
	}
}
