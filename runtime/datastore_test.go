package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// connectedClients returns the number of client connections the servers
// behind raw have: every node's, summed, on a cluster.
func connectedClients(t *testing.T, raw redis.UniversalClient) int {
	t.Helper()
	one := func(c redis.Cmdable) (int, error) {
		info := c.Info(bg, "clients").Val()
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
				return strconv.Atoi(v)
			}
		}
		return 0, errors.New("no connected_clients in INFO")
	}
	cc, ok := raw.(*redis.ClusterClient)
	if !ok {
		n, err := one(raw)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var mu sync.Mutex
	sum := 0
	err := cc.ForEachShard(bg, func(ctx context.Context, node *redis.Client) error {
		n, err := one(node)
		mu.Lock()
		sum += n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestLazyConnectAndClose(t *testing.T) {
	raw := rawClient(t)
	raw.Ping(bg)
	before := connectedClients(t, raw)
	goroutinesBefore := goruntime.NumGoroutine()
	ds, err := New(Options{URL: redisURL, Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n := connectedClients(t, raw); n != before {
		t.Errorf("New opened connections: %d clients, want %d", n, before)
	}
	if err := ds.Connection.Ping(bg); err != nil {
		t.Fatal(err)
	}
	if n := connectedClients(t, raw); n <= before {
		t.Errorf("Ping opened no connection")
	}

	// Close ends a blocked Pop with ErrClosed and waits for it.
	var wg sync.WaitGroup
	wg.Add(1)
	var popErr error
	start := time.Now()
	go func() {
		defer wg.Done()
		_, popErr = ds.Queue.Pop(bg, "lazy", 10*time.Second, new(int))
	}()
	time.Sleep(100 * time.Millisecond)
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(popErr, ErrClosed) || time.Since(start) > 2*time.Second {
		t.Errorf("blocked Pop after Close = %v after %v; want ErrClosed at once", popErr, time.Since(start))
	}
	if err := ds.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	for _, err := range []error{
		ds.Queue.Push(bg, "q", 1),
		ds.Cache.Set(bg, "k", 1, 0),
		second(ds.Cache.Get(bg, "k", new(int))),
		ds.Connection.Ping(bg),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("call after Close = %v; want ErrClosed", err)
		}
	}
	waitGoroutines(t, goroutinesBefore)
	ok := waitFor(2*time.Second, func() bool { return connectedClients(t, raw) == before })
	if !ok {
		t.Errorf("Close left connections open: %d, want %d", connectedClients(t, raw), before)
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{URL: "redis://x", Addr: "y"}, "URL is set together with Addr"},
		{Options{PoolSize: -1}, "PoolSize -1 is negative"},
		{Options{BlockingPoolSize: -1}, "BlockingPoolSize -1 is negative"},
		{Options{Prefix: "a{b"}, "Prefix"},
		{Options{Client: redis.NewClient(&redis.Options{}), URL: "redis://x"}, "Client is set together with URL"},
		{Options{URL: "http://user:hunter2@127.0.0.1/0"}, "URL http://xxxxx@127.0.0.1/0"},
		{Options{URL: "redis://user:hunter2@127.0.0.1/notadb"}, "invalid argument"},
	} {
		_, err := New(tc.opts)
		if err == nil || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v; want an ErrInvalidArgument containing %q", tc.opts, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error carries the password: %v", err)
		}
	}
}

// TestNoSecretsInErrors authenticates with a wrong password and checks
// that no error text carries it: errors, logs and spans never carry a
// password.
func TestNoSecretsInErrors(t *testing.T) {
	redistest.SingleOnly(t, "a server of its own with a password")
	srv, err := redistest.Start("--requirepass", "the-real-one")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ds := newStore(t, Options{URL: "redis://default:s3cret-pw@" + srv.Addr + "/0"})
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	err = ds.Queue.Push(ctx, "q", 1)
	if err == nil {
		t.Fatal("AUTH with a password on a server without one succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error carries the password: %v", err)
	}
}

func TestBringYourOwnClient(t *testing.T) {
	own := testClient(t)
	ds := newStore(t, Options{Client: own})
	if err := ds.Queue.Push(bg, "own", 1); err != nil {
		t.Fatal(err)
	}
	var v int
	if ok, err := ds.Queue.Pop(bg, "own", time.Second, &v); !ok || err != nil || v != 1 {
		t.Fatalf("Pop = %v, %v, %v", ok, err, v)
	}
	ds.Close()
	if err := own.Ping(bg).Err(); err != nil {
		t.Errorf("Close closed the caller's client: %v", err)
	}
}

// TestServerGoesAway kills the server under a blocked Pop: the Pop fails
// with an error that names the operation and the key, and once the server
// is back on the same port, calls work again without a new DataStore.
func TestServerGoesAway(t *testing.T) {
	redistest.SingleOnly(t, "kills and restarts a server of its own")
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ds := newStore(t, Options{URL: srv.URL(0)})
	q := NewQueue[int](ds, &QueueDecl{Name: "gone", Key: MustKeyPattern("gone")})
	if err := q.Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.Pop(bg, time.Second); !ok || err != nil {
		t.Fatal(ok, err)
	}

	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, _, err := q.Pop(ctx, 10*time.Second)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.HasPrefix(err.Error(), `storagegen: pop "queue:{gone}": `) {
			t.Errorf("Pop when the server died = %v; want an error naming pop and the key", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Pop did not return after the server died")
	}
	if err := q.Push(ctx, 2); err == nil {
		t.Error("Push to a dead server succeeded")
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(ctx, 3); err != nil {
		t.Fatalf("Push after restart: %v", err)
	}
	if v, ok, err := q.Pop(ctx, time.Second); v != 3 || !ok || err != nil {
		t.Errorf("Pop after restart = %v, %v, %v", v, ok, err)
	}
}

// TestTLS talks to a TLS-only redis-server whose certificate comes from a
// CA the test makes: with the CA in TLSConfig, pushes and blocking pops
// work (the blocking pool inherits TLS); without it, the certificate is
// refused; skip_verify in the URL is refused outright.
func TestTLS(t *testing.T) {
	redistest.SingleOnly(t, "a TLS server of its own")
	srv, pool, err := redistest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "rediss://" + srv.Addr + "/0"

	ds := newStore(t, Options{URL: url, TLSConfig: &tls.Config{RootCAs: pool}})
	if err := ds.Queue.Push(bg, "tls", "over TLS"); err != nil {
		t.Fatal(err)
	}
	var got string
	if ok, err := ds.Queue.Pop(bg, "tls", time.Second, &got); !ok || err != nil || got != "over TLS" {
		t.Fatalf("Pop over TLS = %v, %v, %q", ok, err, got)
	}
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := ds.Queue.Pop(ctx, "tls", 5*time.Second, &got); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Pop over TLS = %v", err)
	}

	untrusted := newStore(t, Options{URL: url})
	ctx, cancel = context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := untrusted.Queue.Push(ctx, "tls", 1); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Push with an untrusted certificate = %v; want a certificate error", err)
	}
	if _, err := New(Options{URL: url + "?skip_verify=true"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("skip_verify=true accepted: %v", err)
	}
}

// TestNetworkCutEndsPop cuts the network silently (a proxy drops the
// server's bytes) under a pop that is then cancelled: CLIENT UNBLOCK cannot
// get through, so the pop ends at go-redis's socket deadline (timeout,
// rounded up to a second, plus 10 s) with an error that names it, instead
// of hanging or abandoning a connection that may hold a popped item.
func TestNetworkCutEndsPop(t *testing.T) {
	redistest.SingleOnly(t, "a TCP proxy in front of a server of its own")
	t.Parallel()
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	proxy, err := redistest.NewProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ds := newStore(t, Options{Addr: proxy.Addr})
	q := NewQueue[int](ds, &QueueDecl{Name: "cut", Key: MustKeyPattern("cut")})
	if _, _, err := q.Pop(bg, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, func() { proxy.Blackhole(true); cancel() })
	start := time.Now()
	_, ok, err := q.Pop(ctx, 500*time.Millisecond)
	took := time.Since(start)
	if ok || err == nil || !strings.HasPrefix(err.Error(), `storagegen: pop "queue:{cut}": `) {
		t.Errorf("Pop across a cut = %v, %v; want an error naming pop and the key", ok, err)
	}
	if took < 10*time.Second || took > 20*time.Second {
		t.Errorf("Pop across a cut returned after %v; want the socket deadline, about 11s", took)
	}
	t.Logf("pop across a silent cut returned after %v: %v", took.Round(time.Millisecond), err)

	proxy.Blackhole(false)
	ds.Close() // the connections through the proxy are broken; Close must still return
}
