package runtime

import (
	"context"
	"errors"
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

// Tests from a hostile review of coalescing that held: every promise of
// Push and Pop under many callers, a server restart, full memory and a
// demotion.

// TestCoalescedStressAccounting: 2,000 goroutines push to 7 queues (Push and
// PushMany of 1..50 items, some payloads near 64 KiB so that batches hit
// the 1 MiB bound), each with a context cancelled at a random moment;
// 64 poppers pop concurrently (Pop, PopMany up to 1,500, timeouts 0..5ms,
// random cancels). Afterwards: every push that returned nil is stored
// exactly once, every push that returned ctx's error stored nothing, and
// every item popped was pushed and popped once.
func TestCoalescedStressAccounting(t *testing.T) {
	ds := newStore(t, Options{})
	const queues, pushers, poppers = 7, 2000, 64
	var qs []Queue[string]
	for i := range queues {
		qs = append(qs, testQueue[string](t, ds, fmt.Sprintf("stress%d", i)))
	}
	big := strings.Repeat("x", 60<<10)
	type outcome struct {
		items []string
		err   error
	}
	outcomes := make([]outcome, pushers)
	var popped sync.Map // item -> count
	var popErrs atomic.Int64
	stopPop := make(chan struct{})
	var popWG sync.WaitGroup
	for p := range poppers {
		popWG.Add(1)
		go func() {
			defer popWG.Done()
			r := rand.New(rand.NewPCG(uint64(p), 1))
			for i := 0; i < 100000; i++ {
				select {
				case <-stopPop:
					return
				default:
				}
				q := qs[r.IntN(queues)]
				ctx, cancel := context.WithTimeout(bg, time.Duration(r.IntN(3000))*time.Microsecond)
				n := 1 + r.IntN(3)
				if r.IntN(20) == 0 {
					n = 1500
				}
				vs, err := q.PopMany(ctx, n, time.Duration(r.IntN(6))*time.Millisecond)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					popErrs.Add(1)
					t.Errorf("pop: %v", err)
				}
				for _, v := range vs {
					if c, loaded := popped.LoadOrStore(v, new(atomic.Int32)); loaded {
						c.(*atomic.Int32).Add(1)
					} else {
						c.(*atomic.Int32).Add(1)
					}
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for g := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			q := qs[g%queues]
			n := 1 + r.IntN(50)
			items := make([]string, n)
			for i := range items {
				items[i] = fmt.Sprintf("g%d-%d", g, i)
				if r.IntN(40) == 0 {
					items[i] += big
				}
			}
			ctx, cancel := context.WithTimeout(bg, time.Duration(r.IntN(400000))*time.Microsecond)
			defer cancel()
			var err error
			if n == 1 {
				err = q.Push(ctx, items[0])
			} else {
				err = q.PushMany(ctx, items...)
			}
			outcomes[g] = outcome{items, err}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	close(stopPop)
	popWG.Wait()
	for _, q := range qs {
		for range 1000 {
			vs, err := q.PopMany(bg, 1000, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) == 0 {
				break
			}
			for _, v := range vs {
				c, _ := popped.LoadOrStore(v, new(atomic.Int32))
				c.(*atomic.Int32).Add(1)
			}
		}
	}
	stored, cancelled := 0, 0
	for g, o := range outcomes {
		for _, it := range o.items {
			cv, ok := popped.LoadAndDelete(it)
			n := int32(0)
			if ok {
				n = cv.(*atomic.Int32).Load()
			}
			switch {
			case o.err == nil && n != 1:
				t.Errorf("pusher %d: push returned nil; item %.20q found %d times", g, it, n)
			case o.err != nil && (errors.Is(o.err, context.DeadlineExceeded) || errors.Is(o.err, context.Canceled)) && n != 0:
				t.Errorf("pusher %d: push returned %v; item %.20q found %d times", g, o.err, it, n)
			case o.err != nil && !errors.Is(o.err, context.DeadlineExceeded) && !errors.Is(o.err, context.Canceled):
				t.Errorf("pusher %d: push = %v", g, o.err)
			}
		}
		if o.err == nil {
			stored++
		} else {
			cancelled++
		}
	}
	popped.Range(func(k, v any) bool {
		t.Errorf("popped %.20q, which no push wrote", k)
		return true
	})
	t.Logf("%d pushes stored, %d cancelled", stored, cancelled)
}

// TestCoalescedServerRestart: 64 goroutines each push 150 items one
// by one (Push) to 4 queues while the server (AOF, fsync always) is killed
// and restarted twice. Afterwards: an item whose push returned nil is
// stored once; one whose push returned ErrUnknownOutcome at most once; any
// other error, never; each goroutine's stored items are in its order.
func TestCoalescedServerRestart(t *testing.T) {
	srv, err := redistest.Start("--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ds := newStore(t, Options{URL: srv.URL(0), Prefix: "r:"})
	const workers, each, queues = 64, 150, 4
	var qs []Queue[string]
	for i := range queues {
		qs = append(qs, testQueue[string](t, ds, fmt.Sprintf("restart%d", i)))
	}
	errsOf := make([][]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := qs[w%queues]
			for i := range each {
				ctx, cancel := context.WithTimeout(bg, 5*time.Second)
				errsOf[w] = append(errsOf[w], q.Push(ctx, fmt.Sprintf("%d/%d", w, i)))
				cancel()
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	for range 2 {
		time.Sleep(60 * time.Millisecond)
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	found := map[string]int{}
	pos := map[string]int{}
	n := 0
	for _, q := range qs {
		for range 1000 {
			vs, err := q.PopMany(bg, 1000, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) == 0 {
				break
			}
			for _, v := range vs {
				found[v]++
				pos[v] = n
				n++
			}
		}
	}
	kinds := map[string]int{}
	for w := range workers {
		last := -1
		for i, err := range errsOf[w] {
			it := fmt.Sprintf("%d/%d", w, i)
			c := found[it]
			switch {
			case err == nil:
				kinds["nil"]++
				if c != 1 {
					t.Errorf("%s: push nil, stored %d times", it, c)
				}
			case errors.Is(err, ErrUnknownOutcome):
				kinds["unknown"]++
				kinds["unknown-but-stored"] += c
				if kinds["unknown-shown"] < 2 {
					kinds["unknown-shown"]++
					t.Logf("%s: %v", it, err)
				}
				if c > 1 {
					t.Errorf("%s: push %v, stored %d times", it, err, c)
				}
			default:
				kinds[fmt.Sprintf("%.60s", strings.TrimPrefix(err.Error(), "storagegen: push \"r:queue:"))]++
				if c != 0 {
					t.Errorf("%s: push %v, stored %d times", it, err, c)
				}
			}
			if c == 1 {
				if pos[it] < last {
					t.Errorf("%s popped before an earlier push of the same goroutine", it)
				}
				last = pos[it]
			}
		}
	}
	t.Logf("outcomes: %v", kinds)
}

// TestCoalescedOOMAndReadOnly: on a full server (noeviction),
// concurrent pushes to several queues, sets and pops: pushes and sets are
// refused with OOM (not ErrUnknownOutcome) and store nothing, pops and
// gets work. Then REPLICAOF (a replica is read-only): pushes, sets and
// pops get READONLY; gets work.
func TestCoalescedOOMAndReadOnly(t *testing.T) {
	srv, err := redistest.Start("--maxmemory-policy", "noeviction")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	ds := newStore(t, Options{URL: srv.URL(0), Prefix: "o:"})
	full := testQueue[string](t, ds, "full")
	if err := full.PushMany(bg, "a", "b", "c", "d", "e", "f"); err != nil {
		t.Fatal(err)
	}
	c := testCache[string](ds, "c", time.Minute)
	if err := c.Set(bg, "before"); err != nil {
		t.Fatal(err)
	}
	fillMemory(t, raw)

	run := func(want string) {
		var wg sync.WaitGroup
		var pushErr, setErr, popErr, getErr, popped atomic.Int64
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 4 {
				case 0:
					q := testQueue[string](t, ds, fmt.Sprintf("new%d", i%3))
					err := q.Push(bg, "x")
					if err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, ErrUnknownOutcome) {
						t.Errorf("push = %v; want %s", err, want)
					} else {
						pushErr.Add(1)
					}
				case 1:
					err := c.Set(bg, "after")
					if err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, ErrUnknownOutcome) {
						t.Errorf("set = %v; want %s", err, want)
					} else {
						setErr.Add(1)
					}
				case 2:
					_, ok, err := full.Pop(bg, 0)
					if want == "READONLY" {
						if err == nil || !strings.Contains(err.Error(), want) {
							t.Errorf("pop on a replica = %v; want READONLY", err)
						}
					} else if err != nil {
						popErr.Add(1)
						t.Errorf("pop under OOM = %v", err)
					} else if ok {
						popped.Add(1)
					}
				case 3:
					v, ok, err := c.Get(bg)
					if err != nil || !ok || v != "before" {
						getErr.Add(1)
						t.Errorf("get = %q, %v, %v", v, ok, err)
					}
				}
			}()
		}
		wg.Wait()
		t.Logf("%s: %d pushes and %d sets refused, %d popped", want, pushErr.Load(), setErr.Load(), popped.Load())
	}
	run("OOM")
	for i := range 3 {
		if n, _ := raw.Exists(bg, testQueue[string](t, ds, fmt.Sprintf("new%d", i)).Key()).Result(); n != 0 {
			t.Errorf("a refused push created its queue")
		}
	}
	if err := raw.ConfigSet(bg, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := full.PushMany(bg, "g", "h"); err != nil {
		t.Fatal(err)
	}
	if err := raw.SlaveOf(bg, "127.0.0.1", "1").Err(); err != nil {
		t.Fatal(err)
	}
	defer raw.SlaveOf(bg, "no", "one")
	run("READONLY")
}
