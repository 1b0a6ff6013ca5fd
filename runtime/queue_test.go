package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/internal/redistest"
)

func testQueue[T any](t *testing.T, ds *DataStore, name string) Queue[T] {
	return NewQueue[T](ds, &QueueDecl{Name: name, Prefix: ds.prefix, Key: MustKeyPattern(name)})
}

func TestPushManyPopsInOrder(t *testing.T) {
	ds := newStore(t, Options{})
	q := testQueue[int](t, ds, "fifo")
	if err := q.PushMany(bg, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(bg, 4); err != nil {
		t.Fatal(err)
	}
	if err := q.PushMany(bg, 5, 6); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(bg); err != nil || n != 6 {
		t.Fatalf("Len = %d, %v; want 6", n, err)
	}
	var got []int
	v, ok, err := q.Pop(bg, time.Second)
	if err != nil || !ok {
		t.Fatalf("Pop = %v, %v, %v", v, ok, err)
	}
	got = append(got, v)
	rest, err := q.PopMany(bg, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	rest, err = q.PopMany(bg, 100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5, 6}, got); diff != "" {
		t.Errorf("popped order (-want +got):\n%s", diff)
	}
	if rest, err := q.PopMany(bg, 10, 0); err != nil || len(rest) != 0 {
		t.Errorf("PopMany on empty queue = %v, %v", rest, err)
	}
}

func TestPopTimeouts(t *testing.T) {
	ds := newStore(t, Options{})
	q := testQueue[int](t, ds, "empty")

	start := time.Now()
	_, ok, err := q.Pop(bg, 200*time.Millisecond)
	took := time.Since(start)
	if err != nil || ok {
		t.Fatalf("Pop = %v, %v; want a timeout", ok, err)
	}
	// go-redis would send "1" (a whole second); the exact value is sent.
	if took < 195*time.Millisecond || took >= 400*time.Millisecond {
		t.Errorf("200ms Pop took %v; want 200ms..400ms", took)
	}

	start = time.Now()
	if _, ok, err := q.Pop(bg, 0); err != nil || ok {
		t.Fatalf("Pop(0) = %v, %v", ok, err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Pop(0) took %v; want it to return at once", took)
	}

	_, _, err = q.Pop(bg, -time.Second)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Pop(-1s) error = %v; want ErrInvalidArgument", err)
	}
	if _, err := q.PopMany(bg, 0, time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("PopMany(0) error = %v; want ErrInvalidArgument", err)
	}

	// A Pop that is waiting gets an item pushed after it started.
	go func() {
		time.Sleep(50 * time.Millisecond)
		q.Push(bg, 7)
	}()
	v, ok, err := q.Pop(bg, 5*time.Second)
	if err != nil || !ok || v != 7 {
		t.Errorf("Pop = %v, %v, %v; want 7", v, ok, err)
	}
}

func TestPopCancel(t *testing.T) {
	ds := newStore(t, Options{})
	q := testQueue[int](t, ds, "cancel")
	if _, _, err := q.Pop(bg, 10*time.Millisecond); err != nil { // warm the pools
		t.Fatal(err)
	}
	before := goruntime.NumGoroutine()

	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, ok, err := q.Pop(ctx, 2*time.Second)
	took := time.Since(start)
	if ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Pop = %v, %v; want context.Canceled", ok, err)
	}
	if took > 300*time.Millisecond {
		t.Errorf("cancelled Pop returned after %v; want about 100ms", took)
	}
	// An item pushed now is not lost to the cancelled pop.
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := q.Pop(bg, time.Second); err != nil || !ok || v != 1 {
		t.Errorf("Pop after cancel = %v, %v, %v", v, ok, err)
	}
	waitGoroutines(t, before)

	// A context that is done before the call never sends anything.
	if _, _, err := q.Pop(ctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Pop with done ctx = %v", err)
	}
}

// trickle pushes the ints 0 to items-1 in batches of ten, pause apart,
// then waits (up to a minute) until *done reaches items.
func trickle(t *testing.T, items int, pause time.Duration, push func(context.Context, ...int) error, done *atomic.Int64) {
	t.Helper()
	for i := 0; i < items; i += 10 {
		batch := make([]int, 10)
		for j := range batch {
			batch[j] = i + j
		}
		if err := push(bg, batch...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
	}
	deadline := time.Now().Add(60 * time.Second)
	for done.Load() < int64(items) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for goruntime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > want {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, want at most %d:\n%s", n, want, buf[:goruntime.Stack(buf, true)])
	}
}

// TestCancelNeverLosesItems pushes 10,000 items while consumers pop with
// contexts cancelled at random moments: every item arrives exactly once.
// A pop that the client gives up on after the server popped would lose its
// item to a dead socket, so no pop may be abandoned.
func TestCancelNeverLosesItems(t *testing.T) {
	const items, consumers = 10_000, 8
	ds := newStore(t, Options{})
	q := testQueue[int](t, ds, "cancels")

	var seen sync.Map
	var received, cancels atomic.Int64
	var dup atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(bg, time.Duration(rng.IntN(2000))*time.Microsecond)
				vs, err := q.PopMany(ctx, 1+rng.IntN(5), 50*time.Millisecond)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					cancels.Add(1)
				} else if err != nil {
					t.Error(err)
					return
				}
				for _, v := range vs {
					if _, loaded := seen.LoadOrStore(v, true); loaded {
						dup.Add(1)
					}
					received.Add(1)
				}
			}
		}()
	}
	// Pushes trickle in, so that most cancels hit a pop blocked on the
	// server, some of them just as an item arrives.
	trickle(t, items, 200*time.Microsecond, q.PushMany, &received)
	close(done)
	wg.Wait()
	n, _ := q.Len(bg)
	t.Logf("received %d of %d items, %d duplicates, %d cancelled pops, %d left", received.Load(), items, dup.Load(), cancels.Load(), n)
	if received.Load() != items || dup.Load() != 0 || n != 0 {
		t.Errorf("received %d, duplicates %d, left %d; want %d, 0, 0", received.Load(), dup.Load(), n, items)
	}
	if cancels.Load() < 100 {
		t.Errorf("only %d pops were cancelled; the test did not test cancellation", cancels.Load())
	}
}

// TestBlockedPopsDoNotStarveOthers blocks PoolSize consumers and still
// gets cache and push calls through: each blocked call holds a connection,
// so blocking pops need a pool of their own.
func TestBlockedPopsDoNotStarveOthers(t *testing.T) {
	const poolSize = 4
	ds := newStore(t, Options{PoolSize: poolSize})
	q := testQueue[int](t, ds, "blocked")
	other := testQueue[int](t, ds, "other")
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	for range poolSize * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Pop(ctx, 30*time.Second)
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(100 * time.Millisecond) // let them block

	var slowest time.Duration
	for i := range 100 {
		start := time.Now()
		if err := ds.Cache.Set(bg, fmt.Sprint("k", i), i, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := other.Push(bg, i); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	// Starved, each call would wait for PoolTimeout (seconds) and fail.
	if slowest > time.Second {
		t.Errorf("slowest Set+Push took %v while pops were blocked", slowest)
	}
}

func TestUndecodableItemsGoToDeadLetters(t *testing.T) {
	ds := newStore(t, Options{})
	q := testQueue[map[string]int](t, ds, "poison")
	raw := rawClient(t)
	bad := [][]byte{[]byte(`{"a":1,"a":2}`), []byte("\"\xff\""), []byte("not json")}
	for _, b := range bad {
		if err := raw.LPush(bg, q.Key(), b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Push(bg, map[string]int{"good": 1}); err != nil {
		t.Fatal(err)
	}
	for i, b := range bad {
		_, ok, err := q.Pop(bg, time.Second)
		if ok || !errors.Is(err, ErrDecode) {
			t.Fatalf("Pop %d = %v, %v; want ErrDecode", i, ok, err)
		}
		if strings.Contains(err.Error(), string(b)) {
			t.Errorf("error %q contains the payload", err)
		}
	}
	v, ok, err := q.Pop(bg, time.Second)
	if err != nil || !ok || v["good"] != 1 {
		t.Fatalf("Pop good item = %v, %v, %v", v, ok, err)
	}
	dead, err := raw.LRange(bg, DeadKey(q.Key()), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{string(bad[2]), string(bad[1]), string(bad[0])}
	if diff := cmp.Diff(want, dead); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}

	// PopMany returns the good items and the error for the rest.
	raw.LPush(bg, q.Key(), `{"x":1}`, `oops`, `{"y":2}`)
	vs, err := q.PopMany(bg, 10, 0)
	if !errors.Is(err, ErrDecode) || len(vs) != 2 || vs[0]["x"] != 1 || vs[1]["y"] != 2 {
		t.Errorf("PopMany = %v, %v; want two items and ErrDecode", vs, err)
	}
	if n, _ := raw.LLen(bg, DeadKey(q.Key())).Result(); n != 4 {
		t.Errorf("dead letters: %d, want 4", n)
	}
}

func TestUntypedQueue(t *testing.T) {
	ds := newStore(t, Options{})
	type msg struct {
		K string `json:"k"`
		N int64  `json:"n"`
	}
	if err := ds.Queue.Push(bg, "queue_node_5_node_8", msg{K: "v", N: 1 << 60}); err != nil {
		t.Fatal(err)
	}
	if n, err := ds.Queue.Len(bg, "queue_node_5_node_8"); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	got := msg{K: "stale"}
	ok, err := ds.Queue.Pop(bg, "queue_node_5_node_8", time.Second, &got)
	if err != nil || !ok || got != (msg{K: "v", N: 1 << 60}) {
		t.Fatalf("Pop = %v, %v, %+v", ok, err, got)
	}
	if ok, err := ds.Queue.Pop(bg, "queue_node_5_node_8", 0, &got); ok || err != nil {
		t.Fatalf("Pop on empty = %v, %v", ok, err)
	}
	// The typed API's escaped names are reachable through the untyped one.
	typed := NewQueue[int](ds, &QueueDecl{Name: "edge", Prefix: ds.prefix, Key: MustKeyPattern("queue_{a}_{b}")}, "node_5", "node_8")
	typed.Push(bg, 42)
	var n int
	if ok, err := ds.Queue.Pop(bg, "queue_node%5F5_node%5F8", time.Second, &n); !ok || err != nil || n != 42 {
		t.Errorf("untyped Pop of a typed queue = %v, %v, %v", ok, err, n)
	}
	for _, name := range []string{"", "a{b}", "a*", "a\nb"} {
		if err := ds.Queue.Push(bg, name, 1); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Push(%q) = %v; want ErrInvalidArgument", name, err)
		}
	}
	// A non-pointer target is refused before anything is taken.
	ds.Queue.Push(bg, "q", 1)
	if _, err := ds.Queue.Pop(bg, "q", time.Second, got); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Pop into a non-pointer = %v; want ErrInvalidArgument", err)
	}
	if n, _ := ds.Queue.Len(bg, "q"); n != 1 {
		t.Errorf("Len after a refused Pop = %d, want the item still queued", n)
	}
	if err := NewQueue[int](nil, &QueueDecl{Name: "x", Key: MustKeyPattern("x")}).Push(bg, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Push on a queue of a nil DataStore = %v", err)
	}
}

// TestPopWithoutClientCommand runs as an ACL user that may not use CLIENT:
// pops fall back to short blocking slices, and still honour timeouts and
// cancellation without losing items.
func TestPopWithoutClientCommand(t *testing.T) {
	user := "noclient_" + fmt.Sprint(rand.Uint32())
	redistest.SetUser(t, user, "on", ">pw", "~*", "&*", "+@all", "-client")
	ds := newStore(t, Options{URL: redistest.WithUser(redisURL, url.UserPassword(user, "pw"))})
	q := testQueue[int](t, ds, "acl")

	start := time.Now()
	if _, ok, err := q.Pop(bg, 120*time.Millisecond); ok || err != nil {
		t.Fatalf("Pop = %v, %v", ok, err)
	}
	// Without CLIENT UNBLOCK the wait ends on the server's first cron
	// tick after the timeout: up to 1000/hz ms late (hz 10 here).
	took := time.Since(start)
	t.Logf("120ms Pop without CLIENT took %v", took.Round(time.Millisecond))
	if took < 115*time.Millisecond || took > 400*time.Millisecond {
		t.Errorf("120ms Pop took %v", took)
	}
	if ds.Connection.unblock.usable() {
		t.Error("CLIENT UNBLOCK still considered usable for a user without CLIENT")
	}
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := q.Pop(ctx, 5*time.Second); !errors.Is(err, context.Canceled) || time.Since(start) > 300*time.Millisecond {
		t.Errorf("cancelled Pop = %v after %v", err, time.Since(start))
	}
	q.Push(bg, 9)
	if v, ok, err := q.Pop(bg, time.Second); v != 9 || !ok || err != nil {
		t.Errorf("Pop = %v, %v, %v", v, ok, err)
	}
}
