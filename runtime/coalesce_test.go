package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// Tests of coalescing (coalesce.go). Most hold the command client's
// commands at a gate (a go-redis hook) with one flight allowed, so that the
// calls made meanwhile wait in line and go out as one batch whose shape the
// test knows; the rest run many goroutines and count every item.

// gate is a go-redis hook that holds every command while it is shut and
// records what was sent: one entry per command or pipeline, each command
// as "name argcount".
type gate struct {
	mu     sync.Mutex
	shut   chan struct{} // nil: open
	sent   [][]string
	held   atomic.Int32
	before func(cmds []redis.Cmder) // when set, runs before each send
	ds     *DataStore
}

// warm makes sure that both of the command client's pools (one for
// commands, one for pipelines) have a connection, so that a test's batch
// does not dial (the proxy would take the handshake's reply for the
// batch's).
func warm(t *testing.T, ds *DataStore) {
	t.Helper()
	cl := ds.Connection.client
	if _, err := cl.Pipelined(bg, func(p redis.Pipeliner) error { p.Ping(bg); p.Ping(bg); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := cl.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		g.pass([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		g.pass(cmds)
		return next(ctx, cmds)
	}
}

func (g *gate) pass(cmds []redis.Cmder) {
	switch cmds[0].Name() {
	case "hello", "client", "auth", "select":
		return // a new connection's handshake
	}
	var names []string
	for _, c := range cmds {
		names = append(names, fmt.Sprintf("%s %d", c.Name(), len(c.Args())))
	}
	g.mu.Lock()
	g.sent = append(g.sent, names)
	shut, before := g.shut, g.before
	g.mu.Unlock()
	if shut != nil {
		g.held.Add(1)
		<-shut
		g.held.Add(-1)
	}
	if before != nil {
		before(cmds)
	}
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.shut)
	g.shut = nil
}

// release opens the gate if it is shut, at the end of a test.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
	g.before = nil
}

// sends returns what was sent since the last call.
func (g *gate) sends() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sent
	g.sent = nil
	return s
}

// gatedStore returns a DataStore whose command client, on addr (the test
// server when ""), passes g, with one batch of each kind in flight at a
// time (unless opts.NoCoalescing).
func gatedStore(t *testing.T, addr string, opts Options) (*DataStore, *gate) {
	t.Helper()
	var cl redis.UniversalClient
	if addr != "" { // a proxy in front of the one test server
		o, err := redis.ParseURL(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		o.Addr = addr
		cl = redis.NewClient(o)
		t.Cleanup(func() { cl.Close() })
	} else {
		cl = testClient(t)
	}
	g := &gate{}
	cl.AddHook(g)
	opts.Client = cl
	ds := newStore(t, opts)
	t.Cleanup(g.release) // before Close, which waits for the calls the gate holds
	if !opts.NoCoalescing {
		ds.batch.push.maxFlights, ds.batch.set.maxFlights = 1, 1
		ds.batch.get.maxFlights, ds.batch.pop.maxFlights = 1, 1
	}
	if err := ds.Connection.Ping(bg); err != nil { // dial before the gate shuts
		t.Fatal(err)
	}
	g.ds = ds
	warm(t, ds)
	g.sends()
	return ds, g
}

// waitFor5s polls cond (bounded: 5,000 times, 1ms apart) and fails the
// test with what when it never holds.
func waitFor5s(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 5000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

func lineLen[A any](b *coalescer[A]) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.line)
}

// async runs fn in a goroutine and returns a channel with its error.
func async(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// holdFirst starts one call of op (which the shut gate holds, in the only
// flight) and returns its error channel.
func holdFirst(t *testing.T, g *gate, op func() error) <-chan error {
	t.Helper()
	warm(t, g.ds)
	g.sends()
	g.close()
	ch := async(op)
	waitFor5s(t, "the first call to reach the gate", func() bool { return g.held.Load() == 1 })
	return ch
}

// within returns the error from ch, failing the test if none comes in 10s
// (a call that hangs).
func within(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// TestPushesShareOneLPUSH holds the first push at the gate while others
// line up: pushes of one value, PushMany of three, and one too large for
// MaxPayloadBytes, which fails at once and alone. The line goes out as one
// LPUSH, and the queue pops the first push, then each call's items
// together and in order, in the order the calls lined up.
func TestPushesShareOneLPUSH(t *testing.T) {
	ds, g := gatedStore(t, "", Options{MaxPayloadBytes: 64})
	q := testQueue[string](t, ds, "share")
	first := holdFirst(t, g, func() error { return q.Push(bg, "first") })

	var want []string
	var calls []<-chan error
	for i := range 12 {
		var vs []string
		if i%2 == 0 {
			vs = []string{fmt.Sprintf("c%02d", i)}
		} else {
			vs = []string{fmt.Sprintf("c%02d-a", i), fmt.Sprintf("c%02d-b", i), fmt.Sprintf("c%02d-c", i)}
		}
		want = append(want, vs...)
		calls = append(calls, async(func() error { return q.PushMany(bg, vs...) }))
		waitFor5s(t, "the push to line up", func() bool { return lineLen(ds.batch.push) == i+1 })
		if i == 5 {
			tooLarge := async(func() error { return q.PushMany(bg, "ok", strings.Repeat("x", 100)) })
			if err := within(t, tooLarge, "a too-large push, while the batch waits"); !errors.Is(err, ErrPayloadTooLarge) {
				t.Errorf("too-large push = %v; want ErrPayloadTooLarge", err)
			}
		}
	}
	g.open()
	if err := within(t, first, "the first push"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range calls {
		if err := within(t, ch, "a lined-up push"); err != nil {
			t.Errorf("push %d = %v", i, err)
		}
	}
	sent := g.sends()
	wantSent := [][]string{{"lpush 3"}, {fmt.Sprintf("lpush %d", 2+len(want))}}
	if !slices.EqualFunc(sent, wantSent, slices.Equal) {
		t.Errorf("sent %q; want %q (the line as one LPUSH)", sent, wantSent)
	}
	got, err := q.PopMany(bg, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want = append([]string{"first"}, want...); !slices.Equal(got, want) {
		t.Errorf("popped %q;\nwant %q", got, want)
	}
}

// TestCoalescedWritesLoseNothing pushes from 64 goroutines at once (Push
// and PushMany, to two queues), then pops with 64 goroutines at once (Pop
// and PopMany): every item comes out exactly once, and one drain in order
// shows each producer's items in the order it pushed them. Caches: 64
// goroutines set and get their own keys.
func TestCoalescedWritesLoseNothing(t *testing.T) {
	ds := newStore(t, Options{PoolSize: 8})
	queues := []Queue[string]{testQueue[string](t, ds, "many-a"), testQueue[string](t, ds, "many-b")}
	const producers, rounds = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Go(func() {
			q := queues[p%2]
			for r := range rounds {
				item := func(k int) string { return fmt.Sprintf("%02d:%03d:%d", p, r, k) }
				var err error
				if r%3 == 0 {
					err = q.PushMany(bg, item(0), item(1), item(2))
				} else {
					err = q.Push(bg, item(0))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	perQueue := producers / 2 * (rounds + 2*((rounds+2)/3))

	// Queue a drains in order, through one caller: each producer's items
	// in its order.
	a, err := queues[0].PopMany(bg, 100_000, 0)
	if err != nil || len(a) != perQueue {
		t.Fatalf("queue a: %d items, %v; want %d", len(a), err, perQueue)
	}
	last := map[string]string{}
	for _, it := range a {
		p := it[:2]
		if it <= last[p] {
			t.Fatalf("producer %s: %q popped after %q", p, it, last[p])
		}
		last[p] = it
	}

	// Queue b drains through 64 concurrent poppers.
	var mu sync.Mutex
	seen := map[string]int{}
	for w := range 64 {
		wg.Go(func() {
			for range perQueue + 1 { // bounded: each call takes at least one item or ends the loop
				var got []string
				if w%2 == 0 {
					v, ok, err := queues[1].Pop(bg, 0)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						got = []string{v}
					}
				} else {
					vs, err := queues[1].PopMany(bg, 7, 0)
					if err != nil {
						t.Error(err)
						return
					}
					got = vs
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, v := range got {
					seen[v]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != perQueue {
		t.Errorf("popped %d distinct items from queue b; want %d", len(seen), perQueue)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("item %q popped %d times", v, n)
		}
	}

	// Caches: each goroutine sets and reads back its own keys.
	for w := range 64 {
		wg.Go(func() {
			for r := range 20 {
				c := NewCache[string](ds, &CacheDecl{Name: "c", Prefix: ds.prefix, Key: MustKeyPattern("c:{w:int}:{r:int}"), TTL: time.Minute}, w, r)
				want := fmt.Sprintf("v%d.%d", w, r)
				if err := c.Set(bg, want); err != nil {
					t.Error(err)
					return
				}
				got, ok, err := c.Get(bg)
				if err != nil || !ok || got != want {
					t.Errorf("Get = %q, %v, %v; want %q", got, ok, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCoalescedErrorsReachTheirCallers lines up, in one batch each,
// calls on keys that work and on a key of the wrong type: the server's
// WRONGTYPE reaches only the calls on that key.
func TestCoalescedErrorsReachTheirCallers(t *testing.T) {
	ds, g := gatedStore(t, "", Options{})
	raw := rawClient(t)
	good := testQueue[int](t, ds, "good")
	bad := testQueue[int](t, ds, "bad")
	if err := raw.Set(bg, bad.Key(), "a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	isWrongType := func(err error) bool { return err != nil && strings.Contains(err.Error(), "WRONGTYPE") }

	t.Run("push", func(t *testing.T) {
		first := holdFirst(t, g, func() error { return good.Push(bg, 0) })
		var calls []<-chan error
		for i := range 6 {
			q := good
			if i%3 == 1 {
				q = bad
			}
			calls = append(calls, async(func() error { return q.Push(bg, i+1) }))
			waitFor5s(t, "the push to line up", func() bool { return lineLen(ds.batch.push) == i+1 })
		}
		g.open()
		if err := within(t, first, "first push"); err != nil {
			t.Fatal(err)
		}
		for i, ch := range calls {
			err := within(t, ch, "push")
			if i%3 == 1 {
				if !isWrongType(err) || errors.Is(err, ErrUnknownOutcome) || !strings.HasPrefix(err.Error(), `storagegen: push "`+bad.Key()+`": `) {
					t.Errorf("push %d to the string key = %v; want its WRONGTYPE, naming its key", i, err)
				}
			} else if err != nil {
				t.Errorf("push %d to the list = %v", i, err)
			}
		}
		if sent := g.sends(); len(sent) != 2 || !slices.Equal(sent[1], []string{"lpush 6", "lpush 4"}) {
			t.Errorf("sent %q; want one pipeline of an LPUSH per key", sent)
		}
		if n, _ := good.Len(bg); n != 5 {
			t.Errorf("good queue holds %d items; want 5", n)
		}
	})

	t.Run("pop", func(t *testing.T) {
		first := holdFirst(t, g, func() error { _, _, err := good.Pop(bg, 0); return err })
		type res struct {
			vs  []int
			err error
		}
		var calls []chan res
		for i := range 4 {
			q := good
			if i == 2 {
				q = bad
			}
			ch := make(chan res, 1)
			go func() { vs, err := q.PopMany(bg, 2, 0); ch <- res{vs, err} }()
			calls = append(calls, ch)
			waitFor5s(t, "the pop to line up", func() bool { return lineLen(ds.batch.pop) == i+1 })
		}
		g.open()
		if err := within(t, first, "first pop"); err != nil {
			t.Fatal(err)
		}
		// The good queue held 0, 1, 3, 4, 6 (oldest first) and the first
		// pop took 0; the three lined-up PopMany(2) on it share one RPOP
		// of 6 and take what there is, in line order.
		want := [][]int{{1, 3}, {4, 6}, nil, nil}
		for i, ch := range calls {
			r := <-ch
			if i == 2 {
				if !isWrongType(r.err) {
					t.Errorf("pop of the string key = %v; want its WRONGTYPE", r.err)
				}
				continue
			}
			if r.err != nil || !slices.Equal(r.vs, want[i]) {
				t.Errorf("pop %d = %v, %v; want %v", i, r.vs, r.err, want[i])
			}
		}
		if sent := g.sends(); len(sent) != 2 || !slices.Equal(sent[1], []string{"rpop 3", "rpop 3"}) {
			t.Errorf("sent %q; want one pipeline of an RPOP per key", sent)
		}
	})

	t.Run("get", func(t *testing.T) {
		cache := func(name string) Cache[string] {
			return NewCache[string](ds, &CacheDecl{Name: "g", Prefix: ds.prefix, Key: MustKeyPattern("g:{k}"), TTL: time.Minute}, name)
		}
		if err := cache("a").Set(bg, "A"); err != nil {
			t.Fatal(err)
		}
		if err := raw.LPush(bg, cache("list").Key(), "x").Err(); err != nil {
			t.Fatal(err)
		}
		g.sends()
		first := holdFirst(t, g, func() error { _, _, err := cache("a").Get(bg); return err })
		type res struct {
			v   string
			ok  bool
			err error
		}
		names := []string{"a", "list", "missing", "a"}
		var calls []chan res
		for i, name := range names {
			ch := make(chan res, 1)
			go func() { v, ok, err := cache(name).Get(bg); ch <- res{v, ok, err} }()
			calls = append(calls, ch)
			waitFor5s(t, "the get to line up", func() bool { return lineLen(ds.batch.get) == i+1 })
		}
		g.open()
		if err := within(t, first, "first get"); err != nil {
			t.Fatal(err)
		}
		for i, ch := range calls {
			r := <-ch
			switch names[i] {
			case "a":
				if r.err != nil || !r.ok || r.v != "A" {
					t.Errorf("get a = %q, %v, %v", r.v, r.ok, r.err)
				}
			case "list":
				if !isWrongType(r.err) {
					t.Errorf("get of a list = %v; want WRONGTYPE", r.err)
				}
			case "missing":
				if r.err != nil || r.ok {
					t.Errorf("get of a missing key = %v, %v; want a miss", r.ok, r.err)
				}
			}
		}
		if sent := g.sends(); len(sent) != 2 || len(sent[1]) != 4 {
			t.Errorf("sent %q; want the four gets in one pipeline", sent)
		}
	})

	t.Run("set", func(t *testing.T) {
		c := testCache[int](ds, "ttl", time.Hour)
		first := holdFirst(t, g, func() error { return c.Set(bg, 0) })
		ttls := []time.Duration{time.Hour, 90 * time.Second, 0}
		var calls []<-chan error
		for i, ttl := range ttls {
			ci := NewCache[int](ds, &CacheDecl{Name: "s", Prefix: ds.prefix, Key: MustKeyPattern("s:{i:int}"), TTL: NoExpiry}, i)
			calls = append(calls, async(func() error {
				if ttl == 0 {
					return ci.Set(bg, i)
				}
				return ci.SetTTL(bg, i, ttl)
			}))
			waitFor5s(t, "the set to line up", func() bool { return lineLen(ds.batch.set) == i+1 })
		}
		g.open()
		if err := within(t, first, "first set"); err != nil {
			t.Fatal(err)
		}
		for i, ch := range calls {
			if err := within(t, ch, "set"); err != nil {
				t.Errorf("set %d = %v", i, err)
			}
			key := NewCache[int](ds, &CacheDecl{Name: "s", Prefix: ds.prefix, Key: MustKeyPattern("s:{i:int}")}, i).Key()
			if v, _ := raw.Get(bg, key).Result(); v != strconv.Itoa(i) {
				t.Errorf("%s = %q; want %d", key, v, i)
			}
			pttl, _ := raw.PTTL(bg, key).Result()
			switch want := ttls[i]; {
			case want == 0 && pttl != -1:
				t.Errorf("%s has PTTL %v; want none", key, pttl)
			case want != 0 && (pttl > want || pttl < want-time.Minute):
				t.Errorf("%s has PTTL %v; want about %v", key, pttl, want)
			}
		}
		if sent := g.sends(); len(sent) != 2 || !slices.Equal(sent[1], []string{"set 5", "set 5", "set 3"}) {
			t.Errorf("sent %q; want the three sets in one pipeline", sent)
		}
	})
}

// silentCtx is a context whose Err reports that it was cancelled once
// cancelled is set, but whose Done never closes: its caller never
// notices, so only the batch that takes it from the line can leave it
// out.
type silentCtx struct {
	context.Context
	cancelled *atomic.Bool
}

func (c silentCtx) Err() error {
	if c.cancelled.Load() {
		return context.Canceled
	}
	return nil
}

// TestCoalescedCancels: a call cancelled while it waits in line returns at
// once with the context's error and writes nothing; one cancelled after
// its batch was taken returns its batch's outcome (the item is written);
// a pop cancelled after its batch was taken returns its items.
func TestCoalescedCancels(t *testing.T) {
	ds, g := gatedStore(t, "", Options{})
	q := testQueue[string](t, ds, "cancel")

	// An already cancelled context writes nothing, even with a flight free.
	done, cancelDone := context.WithCancel(bg)
	cancelDone()
	if err := q.Push(done, "dead"); !errors.Is(err, context.Canceled) {
		t.Errorf("push with a cancelled context = %v", err)
	}

	ctxFirst, cancelFirst := context.WithCancel(bg)
	first := holdFirst(t, g, func() error { return q.Push(ctxFirst, "first") })
	ctxLined, cancelLined := context.WithCancel(bg)
	lined := async(func() error { return q.Push(ctxLined, "withdrawn") })
	waitFor5s(t, "the push to line up", func() bool { return lineLen(ds.batch.push) == 1 })
	var silent atomic.Bool
	skipped := async(func() error { return q.Push(silentCtx{bg, &silent}, "skipped") })
	waitFor5s(t, "the push to line up", func() bool { return lineLen(ds.batch.push) == 2 })
	kept := async(func() error { return q.Push(bg, "kept") })
	waitFor5s(t, "the push to line up", func() bool { return lineLen(ds.batch.push) == 3 })

	cancelLined() // waits in line: leaves it, while the gate still holds the flight
	if err := within(t, lined, "a push cancelled in line"); !errors.Is(err, context.Canceled) {
		t.Errorf("push cancelled in line = %v; want context.Canceled", err)
	}
	cancelFirst() // on the wire (held at the gate): the batch decides
	silent.Store(true)
	g.open()
	if err := within(t, first, "a push cancelled on the wire"); err != nil {
		t.Errorf("push cancelled after it was sent = %v; want nil (written)", err)
	}
	if err := within(t, skipped, "a push whose context ended in line"); !errors.Is(err, context.Canceled) {
		t.Errorf("push whose context ended in line = %v; want context.Canceled", err)
	}
	if err := within(t, kept, "push"); err != nil {
		t.Error(err)
	}
	got, err := q.PopMany(bg, 10, 0)
	if want := []string{"first", "kept"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("queue holds %q, %v; want %q: cancelled pushes written exactly when they say so", got, err, want)
	}

	// Pops: one cancelled on the wire gets its item; one cancelled in line
	// takes nothing.
	if err := q.PushMany(bg, "1", "2", "3"); err != nil {
		t.Fatal(err)
	}
	type res struct {
		v   string
		ok  bool
		err error
	}
	pop := func(ctx context.Context) chan res {
		ch := make(chan res, 1)
		go func() { v, ok, err := q.Pop(ctx, 0); ch <- res{v, ok, err} }()
		return ch
	}
	g.close()
	ctxWire, cancelWire := context.WithCancel(bg)
	wire := pop(ctxWire)
	waitFor5s(t, "the pop to reach the gate", func() bool { return g.held.Load() == 1 })
	ctxLine, cancelLine := context.WithCancel(bg)
	line := pop(ctxLine)
	waitFor5s(t, "the pop to line up", func() bool { return lineLen(ds.batch.pop) == 1 })
	cancelLine()
	if r := <-line; r.ok || !errors.Is(r.err, context.Canceled) {
		t.Errorf("pop cancelled in line = %v, %v; want context.Canceled and nothing", r.ok, r.err)
	}
	cancelWire()
	g.open()
	if r := <-wire; r.err != nil || !r.ok || r.v != "1" {
		t.Errorf("pop cancelled on the wire = %q, %v, %v; want the item it took", r.v, r.ok, r.err)
	}
	if n, _ := q.Len(bg); n != 2 {
		t.Errorf("queue holds %d items; want 2", n)
	}
}

// TestCoalescedReplyLost drops the reply to a coalesced batch and closes
// its connection (an in-test proxy). The batch is not sent again: every
// caller in it gets ErrUnknownOutcome (a caller cancelled after the batch
// was taken too: it waited for the outcome),
// and each item is stored once. A batch of pops loses what it took (and
// says so); a batch of gets is read again.
func TestCoalescedReplyLost(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds, g := gatedStore(t, proxy.Addr, Options{})
	q := testQueue[int](t, ds, "lost")
	raw := rawClient(t)
	ctx, cancel := context.WithCancel(bg)
	// dropAt makes the proxy drop the reply to the first send that batch
	// picks, after cancelling ctx (the batch is on its way by then).
	dropAt := func(batch func(cmds []redis.Cmder) bool) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.before = func(cmds []redis.Cmder) {
			if batch(cmds) {
				cancel()
				proxy.DropNextReply()
			}
		}
	}
	lineUp := func(n int, lineLen func() int, call func(i int) <-chan error) []<-chan error {
		var calls []<-chan error
		for i := range n {
			calls = append(calls, call(i))
			waitFor5s(t, "the call to line up", func() bool { return lineLen() == i+1 })
		}
		return calls
	}

	// Pushes: one LPUSH of 8 items, its reply lost.
	dropAt(func(cmds []redis.Cmder) bool { return len(cmds[0].Args()) == 10 })
	first := holdFirst(t, g, func() error { return q.Push(bg, 0) })
	calls := lineUp(8, func() int { return lineLen(ds.batch.push) }, func(i int) <-chan error {
		if i == 3 {
			return async(func() error { return q.Push(ctx, i+1) })
		}
		return async(func() error { return q.Push(bg, i+1) })
	})
	g.open()
	if err := within(t, first, "push"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range calls {
		if err := within(t, ch, "push"); !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("push %d with its batch's reply lost = %v; want ErrUnknownOutcome", i, err)
		}
	}
	if proxy.Dropped() != 1 {
		t.Fatalf("%d replies dropped; want 1", proxy.Dropped())
	}
	if n, _ := raw.LLen(bg, q.Key()).Result(); n != 9 {
		t.Errorf("queue holds %d items; want 9: each once, the lost batch not sent again", n)
	}

	// Pops: one RPOP of 6, its reply lost: the 6 items are gone.
	dropAt(func(cmds []redis.Cmder) bool { return cmds[0].Name() == "rpop" && cmds[0].Args()[2] == 6 })
	first = holdFirst(t, g, func() error { _, _, err := q.Pop(bg, 0); return err })
	calls = lineUp(3, func() int { return lineLen(ds.batch.pop) }, func(i int) <-chan error {
		return async(func() error { _, err := q.PopMany(bg, 2, 0); return err })
	})
	g.open()
	if err := within(t, first, "pop"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range calls {
		if err := within(t, ch, "pop"); !errors.Is(err, ErrUnknownOutcome) || !strings.Contains(err.Error(), "are lost") {
			t.Errorf("pop %d with its batch's reply lost = %v; want ErrUnknownOutcome saying the items are lost", i, err)
		}
	}
	if n, _ := raw.LLen(bg, q.Key()).Result(); n != 2 {
		t.Errorf("queue holds %d items; want 2: the lost batch took 6 and was not sent again", n)
	}

	// Sets: a pipeline of three SETs, its reply lost.
	dropAt(func(cmds []redis.Cmder) bool { return len(cmds) == 3 })
	cache := func(i int) Cache[int] {
		return NewCache[int](ds, &CacheDecl{Name: "s", Prefix: ds.prefix, Key: MustKeyPattern("s:{i:int}"), TTL: time.Minute}, i)
	}
	first = holdFirst(t, g, func() error { return cache(0).Set(bg, 0) })
	calls = lineUp(3, func() int { return lineLen(ds.batch.set) }, func(i int) <-chan error {
		return async(func() error { return cache(i+1).Set(bg, i+1) })
	})
	g.open()
	if err := within(t, first, "set"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range calls {
		if err := within(t, ch, "set"); !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("set %d with its batch's reply lost = %v; want ErrUnknownOutcome", i, err)
		}
	}

	// Gets change nothing: go-redis reads them again.
	for i := range 4 {
		if err := raw.Set(bg, cache(i).Key(), strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	g.mu.Lock()
	g.before = func(cmds []redis.Cmder) {
		if len(cmds) == 3 && proxy.Dropped() == 3 {
			proxy.DropNextReply()
		}
	}
	g.mu.Unlock()
	first = holdFirst(t, g, func() error { _, _, err := cache(0).Get(bg); return err })
	calls = lineUp(3, func() int { return lineLen(ds.batch.get) }, func(i int) <-chan error {
		return async(func() error {
			v, ok, err := cache(i + 1).Get(bg)
			if err == nil && (!ok || v != i+1) {
				err = fmt.Errorf("got %d, %v; want %d", v, ok, i+1)
			}
			return err
		})
	})
	g.open()
	if err := within(t, first, "get"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range calls {
		if err := within(t, ch, "get"); err != nil {
			t.Errorf("get %d with a lost reply = %v; want go-redis to read it again", i, err)
		}
	}
	if proxy.Dropped() != 4 {
		t.Errorf("%d replies dropped; want 4", proxy.Dropped())
	}
}

// TestCloseDuringCoalescedTraffic: Close waits for the batches in flight
// and the calls in line, which are all written; calls after Close return
// ErrClosed. Then, without a gate, 32 goroutines push until Close: every
// push that returned nil is in the queue, once, and no other.
func TestCloseDuringCoalescedTraffic(t *testing.T) {
	ds, g := gatedStore(t, "", Options{})
	q := testQueue[int](t, ds, "close")
	first := holdFirst(t, g, func() error { return q.Push(bg, 0) })
	var calls []<-chan error
	for i := range 5 {
		calls = append(calls, async(func() error { return q.Push(bg, i+1) }))
		waitFor5s(t, "the push to line up", func() bool { return lineLen(ds.batch.push) == i+1 })
	}
	closed := async(ds.Close)
	waitFor5s(t, "Close to begin", func() bool {
		ds.Connection.mu.RLock()
		defer ds.Connection.mu.RUnlock()
		return ds.Connection.closed
	})
	if err := q.Push(bg, 99); !errors.Is(err, ErrClosed) {
		t.Errorf("push after Close began = %v; want ErrClosed", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a batch was held in flight", err)
	default:
	}
	g.open()
	for i, ch := range append(calls, first) {
		if err := within(t, ch, "push"); err != nil {
			t.Errorf("push %d, in flight or in line at Close = %v; want it written", i, err)
		}
	}
	if err := within(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t)
	if n, _ := raw.LLen(bg, q.Key()).Result(); n != 6 {
		t.Errorf("queue holds %d items; want 6", n)
	}

	ds2 := newStore(t, Options{})
	q2 := testQueue[int](t, ds2, "close-busy")
	var ok sync.Map
	var wg sync.WaitGroup
	var pushed atomic.Int64
	for w := range 32 {
		wg.Go(func() {
			for i := range 100_000 { // bounded; Close ends it
				v := w*1_000_000 + i
				err := q2.Push(bg, v)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ok.Store(v, true)
				pushed.Add(1)
			}
		})
	}
	waitFor5s(t, "pushes to flow", func() bool { return pushed.Load() >= 2000 })
	if err := ds2.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	items, err := raw.LRange(bg, q2.Key(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, s := range items {
		v, _ := strconv.Atoi(s)
		if seen[v] {
			t.Errorf("item %d stored twice", v)
		}
		seen[v] = true
		if _, found := ok.Load(v); !found {
			t.Errorf("item %d stored, but its push did not return nil", v)
		}
	}
	if int64(len(items)) != pushed.Load() {
		t.Errorf("queue holds %d items; %d pushes returned nil", len(items), pushed.Load())
	}
}

// TestNoCoalescing: with the option set, calls made while the gate holds
// one do not line up: each is sent at once, as a command of its own.
func TestNoCoalescing(t *testing.T) {
	ds, g := gatedStore(t, "", Options{NoCoalescing: true})
	q := testQueue[int](t, ds, "alone")
	g.sends()
	g.close()
	var calls []<-chan error
	for i := range 5 {
		calls = append(calls, async(func() error { return q.Push(bg, i) }))
	}
	waitFor5s(t, "five pushes at the gate", func() bool { return g.held.Load() == 5 })
	if n := lineLen(ds.batch.push); n != 0 {
		t.Errorf("%d pushes in line; want none", n)
	}
	g.open()
	for _, ch := range calls {
		if err := within(t, ch, "push"); err != nil {
			t.Error(err)
		}
	}
	if sent := g.sends(); len(sent) != 5 {
		t.Errorf("sent %q; want five single LPUSHes", sent)
	}
}
