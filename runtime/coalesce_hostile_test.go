package runtime

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// Tests from a hostile review of coalescing; each failed on the first
// version of it.

// step lets the sends the gate holds go, and holds the ones after them.
func (g *gate) step() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.shut)
	g.shut = make(chan struct{})
}

// TestPopManyHugeCountInBatch: PopMany(math.MaxInt) is a valid call (it
// drains the queue). Lined up with a Pop(1), it must neither wrap the
// shared RPOP's count negative nor hand its error to the other call: a
// call over the batch bound goes alone.
func TestPopManyHugeCountInBatch(t *testing.T) {
	ds, g := gatedStore(t, "", Options{})
	q := testQueue[string](t, ds, "huge")
	if err := q.PushMany(bg, "a", "b", "c", "d"); err != nil {
		t.Fatal(err)
	}
	type res struct {
		vs  []string
		err error
	}
	pop := func(n int) chan res {
		ch := make(chan res, 1)
		go func() { vs, err := q.PopMany(bg, n, 0); ch <- res{vs, err} }()
		return ch
	}
	g.sends()
	g.close()
	first := pop(1) // holds the only flight at the gate
	waitFor5s(t, "the first pop to reach the gate", func() bool { return g.held.Load() == 1 })
	innocent := pop(1)
	waitFor5s(t, "the innocent pop to line up", func() bool { return lineLen(ds.batch.pop) == 1 })
	drain := pop(math.MaxInt)
	waitFor5s(t, "the draining pop to line up", func() bool { return lineLen(ds.batch.pop) == 2 })
	g.open()
	if r := <-first; r.err != nil {
		t.Fatalf("first pop: %v", r.err)
	}
	ri, rd := <-innocent, <-drain
	if ri.err != nil || rd.err != nil {
		t.Fatalf("Pop(1) beside PopMany(math.MaxInt) = %v; PopMany = %v; want both to work", ri.err, rd.err)
	}
	if len(ri.vs) != 1 || len(rd.vs) != 2 {
		t.Errorf("Pop(1) took %q and PopMany(math.MaxInt) %q; want one and the other two", ri.vs, rd.vs)
	}
	if vs, err := q.PopMany(bg, math.MaxInt, 0); err != nil || len(vs) != 0 {
		t.Errorf("PopMany(math.MaxInt) alone on an empty queue = %q, %v", vs, err)
	}
}

// panicHook panics once, in the goroutine that sends the next two-item
// LPUSH, when armed: a hook of the caller's client with a bug.
type panicHook struct{ armed atomic.Bool }

func (h *panicHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *panicHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "lpush" && len(cmd.Args()) == 4 && h.armed.CompareAndSwap(true, false) {
			panic("hook bug")
		}
		return next(ctx, cmd)
	}
}
func (h *panicHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestPanicInBatchFailsItsCalls: a panic while a batch is sent goes up the
// goroutine of the caller that sent it (a net/http handler recovers it,
// say); the other calls of the batch get ErrUnknownOutcome at once, the
// flight is given back, and later pushes work.
func TestPanicInBatchFailsItsCalls(t *testing.T) {
	ds, g := gatedStore(t, "", Options{})
	h := &panicHook{}
	ds.Connection.client.AddHook(h)
	q := testQueue[string](t, ds, "panic")

	first := holdFirst(t, g, func() error { return q.Push(bg, "first") })
	recovered := make(chan any, 1)
	leader := async(func() (err error) {
		defer func() { recovered <- recover() }()
		return q.Push(bg, "leader") // sends the next batch
	})
	waitFor5s(t, "the leader to line up", func() bool { return lineLen(ds.batch.push) == 1 })
	follower := async(func() error { return q.Push(bg, "follower") })
	waitFor5s(t, "the follower to line up", func() bool { return lineLen(ds.batch.push) == 2 })

	h.armed.Store(true)
	g.open()
	if err := within(t, first, "first push"); err != nil {
		t.Fatal(err)
	}
	within(t, leader, "the leader")
	if p := <-recovered; p == nil {
		t.Error("the panic did not reach the goroutine that sent the batch")
	}
	if err := within(t, follower, "the follower"); !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("the other call of the batch = %v; want ErrUnknownOutcome", err)
	}
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := q.Push(ctx, "later"); err != nil {
		t.Errorf("a later push = %v: the flight was not given back", err)
	}
}

// TestAbandonedGet: a get whose batch was taken, and whose context then
// ends, returns at once with the context's error, while the batch is
// still on the wire; the batch's other get gets its value.
func TestAbandonedGet(t *testing.T) {
	ds, g := gatedStore(t, "", Options{})
	c := testCache[string](ds, "abandon", time.Minute)
	if err := c.Set(bg, "v"); err != nil {
		t.Fatal(err)
	}
	first := holdFirst(t, g, func() error { _, _, err := c.Get(bg); return err })
	leader := async(func() error {
		v, ok, err := c.Get(bg)
		if err == nil && (!ok || v != "v") {
			err = errors.New("wrong value")
		}
		return err
	})
	waitFor5s(t, "the leader to line up", func() bool { return lineLen(ds.batch.get) == 1 })
	ctx, cancel := context.WithCancel(bg)
	leaver := async(func() error { _, _, err := c.Get(ctx); return err })
	waitFor5s(t, "the leaver to line up", func() bool { return lineLen(ds.batch.get) == 2 })
	g.step() // the first get goes; the next batch (leader and leaver) is held
	if err := within(t, first, "first get"); err != nil {
		t.Fatal(err)
	}
	waitFor5s(t, "the next batch to reach the gate", func() bool { return g.held.Load() == 1 })
	cancel()
	if err := within(t, leaver, "the cancelled get"); !errors.Is(err, context.Canceled) {
		t.Errorf("a get cancelled while its batch is on the wire = %v; want context.Canceled at once", err)
	}
	g.open()
	if err := within(t, leader, "the leader"); err != nil {
		t.Errorf("the other get of the batch = %v", err)
	}
	for range 100 { // the abandoned call went back to the pool: reuse it
		if v, ok, err := c.Get(bg); err != nil || !ok || v != "v" {
			t.Fatalf("Get after = %v, %v, %v", v, ok, err)
		}
	}
}

// TestPopManyTailRPOPSentOnce: PopMany waits in BRPOP for its first item,
// then takes the rest with RPOP; when that RPOP's reply is lost it must
// not be sent again (what the first took would vanish without a word):
// the caller gets ErrUnknownOutcome, which says the items are lost.
func TestPopManyTailRPOPSentOnce(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds, g := gatedStore(t, proxy.Addr, Options{})
	raw := rawClient(t)
	q := testQueue[string](t, ds, "tail")
	var armed atomic.Bool
	armed.Store(true)
	g.mu.Lock()
	g.before = func(cmds []redis.Cmder) {
		if cmds[0].Name() == "rpop" && len(cmds[0].Args()) == 3 && cmds[0].Args()[2] == 9 && armed.CompareAndSwap(true, false) {
			proxy.DropNextReply()
		}
	}
	g.mu.Unlock()
	type res struct {
		vs  []string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		vs, err := q.PopMany(bg, 10, 5*time.Second)
		ch <- res{vs, err}
	}()
	waitFor5s(t, "the pop to block", func() bool {
		return strings.Contains(raw.Info(bg, "clients").Val(), "blocked_clients:1")
	})
	if err := raw.LPush(bg, q.Key(), `"1"`, `"2"`, `"3"`, `"4"`, `"5"`).Err(); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	left, _ := raw.LLen(bg, q.Key()).Result()
	t.Logf("PopMany = %q, %v; %d left", r.vs, r.err, left)
	if armed.Load() {
		t.Fatal("no reply was dropped")
	}
	if !errors.Is(r.err, ErrUnknownOutcome) || !strings.Contains(r.err.Error(), "lost") {
		t.Errorf("PopMany whose tail RPOP lost its reply = %q, %v; want the first item and ErrUnknownOutcome saying the rest are lost", r.vs, r.err)
	}
	if len(r.vs) != 1 || left != 0 {
		t.Errorf("got %d items, %d left; want the one BRPOP took, and the RPOP sent once (it took the rest)", len(r.vs), left)
	}
}

// TestCallersContextTimeoutEnabled: a caller's client with go-redis's
// ContextTimeoutEnabled bounds a command's socket wait by the caller's
// deadline; a push alone is sent on the caller's context, so that holds
// for it too: on a silent connection it fails at the deadline (an unknown
// outcome: it was sent), not after the client's 30s read timeout.
func TestCallersContextTimeoutEnabled(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	for _, off := range []bool{false, true} {
		cl := redis.NewClient(&redis.Options{Addr: proxy.Addr, ReadTimeout: 30 * time.Second, ContextTimeoutEnabled: true})
		defer cl.Close()
		ds := newStore(t, Options{Client: cl, NoCoalescing: off})
		q := testQueue[string](t, ds, "cte")
		if err := q.Push(bg, "warm"); err != nil {
			t.Fatal(err)
		}
		proxy.Blackhole(true)
		ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
		// within allows 10s, far less than the 30s read timeout: a push
		// that waits for that hangs here.
		err := within(t, async(func() error { return q.Push(ctx, "x") }), "a push past its deadline")
		cancel()
		proxy.Blackhole(false)
		if !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("NoCoalescing %v: Push on a silent connection with a 200ms deadline = %v; want an unknown outcome (it was sent)", off, err)
		}
		proxy.Cut()
	}
}
