package runtime

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// Fault tests of at-least-once queues against real redis-server processes:
// consumers killed with SIGKILL (as child processes of the test binary),
// the server restarted and demoted, the network cut through a proxy.

var crashLong = flag.Bool("crash.long", false, "run the long crash test (100,000 items, 2,000 kills)")

// crashEnv are the settings a crash-test child reads.
const (
	envHelper  = "STORAGEGEN_CRASH_HELPER" // "1" in a child
	envPrefix  = "STORAGEGEN_CRASH_PREFIX"
	envCrashAt = "STORAGEGEN_CRASH_AT" // a Consume hook point, or "handler"
	crashLease = time.Second
	crashConc  = 4 // handlers per child: the most items one kill can leave in flight
)

type crashJob struct {
	N int `json:"n"`
}

func crashQueue(ds *DataStore) ReliableQueue[crashJob] {
	return NewReliableQueue[crashJob](ds, &QueueDecl{Name: "crash", Prefix: ds.prefix, Key: MustKeyPattern("crash"),
		Lease: crashLease, MaxDeliveries: 1000})
}

// doneKey is the hash where children count each ID they handled.
func doneKey(prefix string) string { return prefix + "done" }

// TestHelperCrashConsumer is not a test: it is the body of a consumer
// process that TestCrash and TestCrashPoints start and kill. It consumes
// until it is killed (or, as a bound, for two minutes), counting each
// handled ID in a hash. With STORAGEGEN_CRASH_AT it kills itself at that
// point of its first delivery.
func TestHelperCrashConsumer(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("the body of a child process of TestCrash")
	}
	prefix := os.Getenv(envPrefix)
	ds, err := New(Options{URL: redisURL, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t)
	die := func() {
		// SIGKILL on Unix, TerminateProcess on Windows: no deferred call runs.
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Kill()
		}
	}
	crashAt := os.Getenv(envCrashAt)
	if crashAt != "" && crashAt != "handler" {
		testHook = func(point string) {
			if point == crashAt {
				die()
			}
		}
	}
	ctx, cancel := context.WithTimeout(bg, 2*time.Minute)
	defer cancel()
	err = crashQueue(ds).Consume(ctx, func(ctx context.Context, d *Delivery[crashJob]) error {
		if crashAt == "handler" {
			die()
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		return raw.HIncrBy(ctx, doneKey(prefix), d.ID, 1).Err()
	}, ConsumeOptions{Concurrency: crashConc, BlockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
}

// startConsumer starts a child consumer process.
func startConsumer(t *testing.T, prefix, crashAt string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashConsumer$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"=1", envPrefix+"="+prefix, envCrashAt+"="+crashAt, "REDIS_URL="+redisURL)
	cmd.SysProcAttr = childProcAttr() // on Linux, never outlive the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestCrash kills consumer processes with SIGKILL at random moments while
// several producers push: no item is lost (between its receive and its ack
// an item is in the processing list, never only in a consumer's memory),
// and duplicates stay within kills × handlers per consumer. The short
// version pushes 10,000 items and kills 200 times; -crash.long pushes
// 100,000 and kills 2,000 times.
func TestCrash(t *testing.T) {
	items, kills, children, producers := 10_000, 200, 4, 4
	if *crashLong {
		items, kills = 100_000, 2_000
	}
	ds := newStore(t, Options{})
	q := crashQueue(ds)
	raw := rawClient(t)

	procs := make([]*exec.Cmd, children)
	for i := range procs {
		procs[i] = startConsumer(t, ds.prefix, "")
	}
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()

	// Producers push batches of ten, paced so that pushing takes about as
	// long as the kills do.
	pace := time.Duration(kills) * 30 * time.Millisecond / time.Duration(items/10/producers)
	var pushed atomic.Int64
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Go(func() {
			for i := p * 10; i < items; i += producers * 10 {
				ids := make([]string, 10)
				payloads := make([][]byte, 10)
				for j := range ids {
					ids[j] = fmt.Sprint("item-", i+j)
					payloads[j] = []byte(fmt.Sprintf(`{"n":%d}`, i+j))
				}
				if err := q.r.push(bg, ids, payloads); err != nil {
					t.Error(err)
					return
				}
				pushed.Add(10)
				time.Sleep(pace)
			}
		})
	}

	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for k := range kills {
		time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		i := rng.IntN(children)
		procs[i].Process.Kill()
		procs[i].Wait()
		procs[i] = startConsumer(t, ds.prefix, "")
		if k%50 == 49 {
			t.Logf("%d kills, %d pushed, %v", k+1, pushed.Load(), time.Since(start).Round(time.Millisecond))
		}
	}
	pwg.Wait()
	if t.Failed() {
		return
	}

	// Every item is handled in the end.
	deadline := time.Now().Add(2 * time.Minute)
	var handled map[string]string
	for {
		var err error
		handled, err = raw.HGetAll(bg, doneKey(ds.prefix)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(handled) >= items || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	dups := 0
	for _, n := range handled {
		c, _ := strconv.Atoi(n)
		dups += c - 1
	}
	lost := 0
	for i := range items {
		if _, ok := handled[fmt.Sprint("item-", i)]; !ok {
			lost++
		}
	}
	dead, _ := q.Dead().Len(bg)
	t.Logf("%d items by %d producers, %d consumers × %d handlers, %d kills in %v: lost %d, duplicates %d (bound %d), dead letters %d",
		items, producers, children, crashConc, kills, time.Since(start).Round(time.Millisecond), lost, dups, kills*crashConc, dead)
	if lost != 0 || dead != 0 {
		t.Errorf("lost %d items, %d dead letters; want 0 and 0", lost, dead)
	}
	if dups > kills*crashConc {
		t.Errorf("%d duplicates; want at most kills × handlers = %d", dups, kills*crashConc)
	}
}

// TestCrashPoints kills a consumer at each point of a delivery's way, once:
// the item is handled again if, and only if, it was not acked.
func TestCrashPoints(t *testing.T) {
	for _, tc := range []struct {
		point     string
		redeliver bool
	}{
		{"received", true}, // leased, not yet handled
		{"handler", true},  // inside the handler
		{"acking", true},   // the handler returned nil; no ack yet
		{"acked", false},   // just after the ack
	} {
		t.Run(tc.point, func(t *testing.T) {
			ds := newStore(t, Options{})
			q := crashQueue(ds)
			if err := q.PushID(bg, "one", crashJob{N: 1}); err != nil {
				t.Fatal(err)
			}
			cmd := startConsumer(t, ds.prefix, tc.point)
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("consumer ended with %v; want killed", err)
			}
			d, ok, err := q.Receive(bg, 3*crashLease)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.redeliver {
				t.Fatalf("after a crash at %s: redelivered = %v, want %v", tc.point, ok, tc.redeliver)
			}
			if ok && (d.ID != "one" || d.Attempt != 2) {
				t.Errorf("redelivered %s attempt %d, want one attempt 2", d.ID, d.Attempt)
			}
		})
	}
}

// TestServerRestart kills redis-server (append-only file, fsync always)
// and starts it again on the same port while producers and a consumer
// run: producers retry with PushID, the consumer carries on by itself, and
// every item is handled: refused connections and LOADING replies are
// logged and retried, never the end of Consume.
func TestServerRestart(t *testing.T) {
	redistest.SingleOnly(t, "kills and restarts a server of its own")
	srv, err := redistest.Start("--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ds := newStore(t, Options{URL: srv.URL(0)})
	q := testReliable[int](ds, "restart", time.Second, 100)
	const items, producers = 2000, 2

	var handled sync.Map
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			n, _ := handled.LoadOrStore(d.Value, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return nil
		}, ConsumeOptions{Concurrency: 4, BlockTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	}()

	var pushErrors atomic.Int64
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Go(func() {
			for i := p; i < items; i += producers {
				for attempt := 0; ; attempt++ {
					err := q.PushID(bg, strconv.Itoa(i), i)
					if err == nil {
						break
					}
					pushErrors.Add(1)
					if attempt > 600 {
						t.Errorf("push %d: %v", i, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	pwg.Wait()

	deadline := time.Now().Add(30 * time.Second)
	count := func() (n, dups int) {
		handled.Range(func(_, v any) bool {
			n++
			dups += int(v.(*atomic.Int64).Load()) - 1
			return true
		})
		return n, dups
	}
	for n, _ := count(); n < items && time.Now().Before(deadline); n, _ = count() {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	n, dups := count()
	t.Logf("%d of %d items handled across a restart, %d handled twice, %d push errors retried; consumer logged %d lines",
		n, items, dups, pushErrors.Load(), strings.Count(logs.String(), "\n"))
	if n != items {
		t.Errorf("%d of %d items handled", n, items)
	}
	if !strings.Contains(logs.String(), "receive failed; retrying") {
		t.Errorf("the consumer did not notice the restart (log %q); the test did not test it", logs.String())
	}
}

// TestDemotion makes the server a replica under a blocked receive, then a
// primary again: the consumer logs and backs off (no hot loop), and
// resumes within two block timeouts: UNBLOCKED and READONLY replies are
// retried with backoff, never the end of Consume.
func TestDemotion(t *testing.T) {
	redistest.SingleOnly(t, "demotes a server of its own (REPLICAOF)")
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	other, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ds := newStore(t, Options{URL: srv.URL(0)})
	q := testReliable[int](ds, "demote", time.Second, 0)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()

	const blockTimeout = time.Second
	var logs lockedBuffer
	got := make(chan int, 1)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- q.Consume(ctx, func(ctx context.Context, d *Delivery[int]) error {
			got <- d.Value
			return nil
		}, ConsumeOptions{Concurrency: 4, BlockTimeout: blockTimeout, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	}()
	time.Sleep(300 * time.Millisecond) // the receivers are blocked

	if err := admin.ReplicaOf(bg, "127.0.0.1", strconv.Itoa(other.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	const demoted = 2 * time.Second
	time.Sleep(demoted)
	failures := strings.Count(logs.String(), "receive failed; retrying")
	if err := admin.ReplicaOf(bg, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := q.Push(bg, 42); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		t.Logf("item %d received %v after the server became primary again; %d receive failures logged in %v as a replica", v, time.Since(back).Round(time.Millisecond), failures, demoted)
	case err := <-errc:
		t.Fatalf("Consume returned %v", err)
	case <-time.After(2 * blockTimeout):
		t.Fatalf("nothing received within two block timeouts of the server coming back; log:\n%s", logs.String())
	}
	if failures == 0 {
		t.Errorf("no receive failure logged while demoted; the test did not test demotion; log:\n%s", logs.String())
	}
	if max := int(demoted/minRetryGap) + 2; failures > max {
		t.Errorf("%d receive failures in %v: a hot loop (want at most %d, about 20 a second)", failures, demoted, max)
	}
	for _, want := range []string{"UNBLOCKED", "READONLY"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestPushReplyLost drops the reply to a push and closes the connection.
// go-redis sends a reliable queue's push again on a new connection, and the
// queue stores the item once. An at-most-once push is not sent again: it
// returns ErrUnknownOutcome, and its item is stored once.
func TestPushReplyLost(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{Addr: proxy.Addr, PoolSize: 1})
	if err := ds.Connection.Ping(bg); err != nil {
		t.Fatal(err)
	}
	reliable := testReliable[int](ds, "once", 0, 0)
	plain := testQueue[int](t, ds, "twice")
	proxy.DropNextReply()
	if err := reliable.Push(bg, 1); err != nil {
		t.Fatalf("reliable push with a lost reply = %v; want go-redis to retry it", err)
	}
	proxy.DropNextReply()
	if err := plain.Push(bg, 1); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("at-most-once push with a lost reply = %v; want ErrUnknownOutcome", err)
	}
	if proxy.Dropped() != 2 {
		t.Fatalf("%d replies dropped, want 2", proxy.Dropped())
	}
	rn, _ := reliable.Len(bg)
	pn, _ := plain.Len(bg)
	t.Logf("after a lost reply: reliable queue holds %d item(s), at-most-once queue %d", rn, pn)
	if rn != 1 {
		t.Errorf("reliable queue holds %d items, want 1", rn)
	}
	if pn != 1 {
		t.Errorf("at-most-once queue holds %d items, want 1 (sent once, never again)", pn)
	}
}

// TestRepliesLost loses replies between a consumer and the server,
// through a proxy. A received item whose reply was blackholed stays in
// processing under its lease (the give-back is blackholed too) and comes
// back after it, as delivery 2; one whose reply was dropped with the
// connection is given back at once by the receipt, uncounted. An ack whose
// reply was dropped is sent again by go-redis and still succeeds.
func TestRepliesLost(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of the one server's address")
	proxy, err := redistest.NewProxy(testServerAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// No retries and a short read timeout, so that the lost replies reach
	// the caller quickly.
	cl := redis.NewClient(&redis.Options{Addr: proxy.Addr, ReadTimeout: 300 * time.Millisecond, MaxRetries: -1})
	defer cl.Close()
	cut := newStore(t, Options{Client: cl})
	direct, err := New(Options{URL: redisURL, Prefix: cut.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	viaProxy := testReliable[int](cut, "cut", time.Second, 0)
	q := testReliable[int](direct, "cut", time.Second, 0)
	if err := cut.Connection.Ping(bg); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"blackhole", "drop"} {
		// Receive reclaims first, at most twice a lease: have it done now,
		// so that the lost reply is that of the receive script.
		if _, _, err := viaProxy.Receive(bg, 0); err != nil {
			t.Fatal(err)
		}
		if err := q.Push(bg, 7); err != nil {
			t.Fatal(err)
		}
		if mode == "blackhole" {
			proxy.Blackhole(true)
		} else {
			proxy.DropNextReply()
		}
		if _, ok, err := viaProxy.Receive(bg, 0); ok || err == nil {
			t.Fatalf("%s: Receive = %v, %v; want a network error", mode, ok, err)
		} else {
			t.Logf("%s: Receive = %v", mode, err)
		}
		proxy.Blackhole(false)
		s := queueState(t, q.Key())
		wantAttempt := 2
		if mode == "blackhole" {
			if len(s.Processing) != 0 || len(s.Leases) != 1 {
				t.Fatalf("%s: after the lost reply: %+v", mode, s)
			}
		} else {
			if len(s.Ready) != 1 || len(s.Processing) != 0 || len(s.Attempts) != 0 {
				t.Fatalf("%s: after the lost reply, want the item ready and uncounted: %+v", mode, s)
			}
			wantAttempt = 1
		}
		start := time.Now()
		d := receive(t, q, 3*time.Second)
		t.Logf("%s: the item came back after %v", mode, time.Since(start).Round(time.Millisecond))
		if d.Value != 7 || d.Attempt != wantAttempt {
			t.Fatalf("%s: %d attempt %d; want 7 attempt %d", mode, d.Value, d.Attempt, wantAttempt)
		}
		if err := d.Ack(bg); err != nil {
			t.Fatal(err)
		}
	}

	// An ack whose reply is lost, retried by go-redis (the default client).
	retrying := newStore(t, Options{Addr: proxy.Addr, Prefix: cut.prefix, PoolSize: 1})
	rq := testReliable[int](retrying, "cut", time.Second, 0)
	if err := rq.Push(bg, 8); err != nil {
		t.Fatal(err)
	}
	d := receive(t, rq, time.Second)
	dropped := proxy.Dropped()
	proxy.DropNextReply()
	if err := d.Ack(bg); err != nil {
		t.Fatalf("Ack with a lost reply = %v; want go-redis to retry it, and success", err)
	}
	if proxy.Dropped() != dropped+1 {
		t.Fatal("no reply was dropped")
	}
	if s := queueState(t, q.Key()); len(s.Items)+len(s.Processing)+len(s.Leases) != 0 {
		t.Fatalf("after the ack: %+v", s)
	}
}

// testServerAddr returns the address of the one test server, for tests
// that call redistest.SingleOnly first (a proxy in front of it).
func testServerAddr(t *testing.T) string {
	t.Helper()
	if tp := redistest.CurrentTopology(); tp != redistest.TopologySingle {
		t.Fatalf("testServerAddr on a %s: the test must call redistest.SingleOnly first", tp)
	}
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	return o.Addr
}

// lockedBuffer is a bytes.Buffer for a logger written by many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
