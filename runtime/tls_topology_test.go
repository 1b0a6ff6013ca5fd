package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

// tlsSecret is the password the failing setups carry: no error may show it.
const tlsSecret = "tls-test-secret-pw"

// TestTLSCluster runs the runtime on a Redis Cluster (3 primaries, 3
// replicas) that speaks TLS only, its bus and replication included, and
// requires client certificates; the certificates come from a CA the test
// makes. With the CA and a client certificate in TLSConfig and one seed
// node in Addrs, the nodes found through CLUSTER SLOTS are each checked
// against the address dialed (no ServerName), and queues on every primary,
// blocking pops and their cancels (each primary's blocking pool and
// CLIENT UNBLOCK client), at-least-once receive and ack and caches work,
// through Options and through a caller's cluster client. Trusting the
// wrong CA, expecting another server name, or bringing no client
// certificate fails every call with an error that says so, at once.
func TestTLSCluster(t *testing.T) {
	redistest.SingleOnly(t, "starts a TLS cluster of its own, the same whatever the run's topology")
	c, err := redistest.StartCluster(redistest.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seed := c.Addrs()[:1]
	t.Run("Addrs", func(t *testing.T) {
		ds := newStore(t, Options{Addrs: seed, TLSConfig: c.TLS.Config(), Prefix: "tlscl1:"})
		overTLS(t, ds, clusterPrimaries(t, c))
	})
	t.Run("rediss+cluster URL", func(t *testing.T) {
		u := strings.Replace(c.URL(nil), "redis+cluster://", "rediss+cluster://", 1)
		ds := newStore(t, Options{URL: u, TLSConfig: c.TLS.Config(), Prefix: "tlscl4:"})
		overTLS(t, ds, clusterPrimaries(t, c))
	})
	t.Run("caller's client", func(t *testing.T) {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seed, TLSConfig: c.TLS.Config()})
		defer cc.Close()
		overTLS(t, newStore(t, Options{Client: cc, Prefix: "tlscl2:"}), clusterPrimaries(t, c))
	})
	t.Run("refused", func(t *testing.T) {
		for name, conf := range wrongTLS(c.TLS) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ds := newStore(t, Options{Addrs: seed, TLSConfig: conf, Password: tlsSecret, Prefix: "tlscl3:"})
				refusedTLS(t, ds, name, true)
			})
		}
	})
}

// TestTLSSentinel runs the runtime through a Sentinel group (1 primary, 1
// replica, 3 sentinels) whose data nodes and sentinels all speak TLS only
// and require client certificates, replication and the sentinels' own
// links over TLS, with a certificate that names "redis.test" only, not
// 127.0.0.1: one TLSConfig serves the sentinels and the data nodes, and
// its ServerName is checked against every certificate. With it, pushes,
// blocking pops and a cancel, at-least-once receive and ack, a cache and a
// local cache work; with no ServerName (each certificate checked against
// 127.0.0.1, which it does not name), the wrong CA or no client
// certificate, every call fails with an error that says so, at once.
func TestTLSSentinel(t *testing.T) {
	redistest.SingleOnly(t, "starts a TLS Sentinel group of its own, the same whatever the run's topology")
	g, err := redistest.StartSentinel(redistest.WithTLS("redis.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	named := func(conf *tls.Config) *tls.Config {
		conf.ServerName = "redis.test"
		return conf
	}
	opts := func(conf *tls.Config, prefix string) Options {
		return Options{MasterName: g.MasterName, SentinelAddrs: g.Addrs(), TLSConfig: conf, Prefix: prefix}
	}
	t.Run("MasterName and SentinelAddrs", func(t *testing.T) {
		overTLS(t, newStore(t, opts(named(g.TLS.Config()), "tlss1:")), nil)
	})
	t.Run("rediss+sentinel URL", func(t *testing.T) {
		u := strings.Replace(g.URL(nil, 0), "redis+sentinel://", "rediss+sentinel://", 1)
		overTLS(t, newStore(t, Options{URL: u, TLSConfig: named(g.TLS.Config()), Prefix: "tlss4:"}), nil)
	})
	t.Run("caller's client", func(t *testing.T) {
		fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName, SentinelAddrs: g.Addrs(), TLSConfig: named(g.TLS.Config())})
		defer fc.Close()
		overTLS(t, newStore(t, Options{Client: fc, Prefix: "tlss2:"}), nil)
	})
	wrong := wrongTLS(g.TLS)
	delete(wrong, "wrong name") // the certificate names redis.test only: no ServerName is the wrong name
	wrong["no server name"] = g.TLS.Config()
	t.Run("refused", func(t *testing.T) {
		for name, conf := range wrong {
			if name != "no server name" {
				named(conf)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				o := opts(conf, "tlss3:")
				o.Password, o.SentinelPassword = tlsSecret, tlsSecret
				refusedTLS(t, newStore(t, o), name, false)
			})
		}
	})
}

// wrongTLS returns configurations that a topology started WithTLS must
// refuse: trusting the wrong CA, expecting a name its certificate does not
// hold, and bringing no client certificate.
func wrongTLS(certs *redistest.TLS) map[string]*tls.Config {
	wrongCA, wrongName, noCert := certs.Config(), certs.Config(), certs.Config()
	wrongCA.RootCAs = certs.WrongCA
	wrongName.ServerName = "not-this.example"
	noCert.Certificates = nil
	return map[string]*tls.Config{"wrong CA": wrongCA, "wrong name": wrongName, "no client certificate": noCert}
}

// clusterPrimaries returns what names the primary that owns a key's slot
// now, as the cluster's nodes say: overTLS spreads its queues over them.
func clusterPrimaries(t *testing.T, c *redistest.Cluster) func(key string) string {
	return func(key string) string {
		n, err := c.Owner(bg, keyspace.Slot(key))
		if err != nil {
			t.Fatal(err)
		}
		return n.Addr
	}
}

// overTLS runs a short end to end on ds: pushes, a blocking pop that gets
// an item pushed later, a cancelled blocking pop, at-least-once receive
// and ack, a cache and a local cache. With owner (a cluster), it does so
// on queues of every primary.
func overTLS(t *testing.T, ds *DataStore, owner func(key string) string) {
	var queues []Queue[int]
	var reliables []ReliableQueue[int]
	if owner == nil {
		queues = []Queue[int]{testQueue[int](t, ds, "q")}
		reliables = []ReliableQueue[int]{testReliable[int](ds, "r", time.Minute, 0)}
	} else {
		seenQ, seenR := map[string]bool{}, map[string]bool{}
		for i := 0; (len(seenQ) < 3 || len(seenR) < 3) && i < 200; i++ {
			if q := testQueue[int](t, ds, fmt.Sprint("q", i)); !seenQ[owner(q.Key())] {
				seenQ[owner(q.Key())] = true
				queues = append(queues, q)
			}
			if r := testReliable[int](ds, fmt.Sprint("r", i), time.Minute, 0); !seenR[owner(r.Key())] {
				seenR[owner(r.Key())] = true
				reliables = append(reliables, r)
			}
		}
		if len(queues) != 3 || len(reliables) != 3 {
			t.Fatalf("found queues on %d primaries, at-least-once queues on %d; want 3", len(queues), len(reliables))
		}
	}
	for _, q := range queues {
		if err := q.PushMany(bg, 1, 2); err != nil {
			t.Fatal(err)
		}
		if vs, err := q.PopMany(bg, 5, time.Second); err != nil || len(vs) != 2 || vs[0] != 1 {
			t.Fatalf("PopMany on %s = %v, %v", q.Key(), vs, err)
		}
		got := make(chan error, 1)
		go func() {
			v, ok, err := q.Pop(bg, 5*time.Second)
			if err == nil && (!ok || v != 3) {
				err = fmt.Errorf("got %v, %v; want 3", v, ok)
			}
			got <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := q.Push(bg, 3); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("blocking Pop on %s: %v", q.Key(), err)
		}
		ctx, cancel := context.WithCancel(bg)
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, _, err := q.Pop(ctx, 10*time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Pop on %s = %v; want context.Canceled", q.Key(), err)
		}
	}
	for _, r := range reliables {
		if err := r.PushMany(bg, 10, 11, 12); err != nil {
			t.Fatal(err)
		}
		ds1, err := r.ReceiveMany(bg, 5, time.Second)
		if err != nil || len(ds1) != 3 {
			t.Fatalf("ReceiveMany on %s = %d, %v", r.Key(), len(ds1), err)
		}
		for _, d := range ds1 {
			if err := d.Ack(bg); err != nil {
				t.Fatal(err)
			}
		}
		if st, err := r.Stats(bg); err != nil || st != (Stats{}) {
			t.Errorf("Stats on %s after the acks = %+v, %v; want nothing left", r.Key(), st, err)
		}
	}
	plain := testCache[string](ds, "c", time.Minute)
	local := NewCache[string](ds, localDecl(ds, "lc", time.Minute, 10), "x")
	for _, c := range []Cache[string]{plain, local} {
		if err := c.Set(bg, "over TLS"); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second Get of the local cache is from memory
			if v, ok, err := c.Get(bg); err != nil || !ok || v != "over TLS" {
				t.Fatalf("Get %s = %q, %v, %v", c.Key(), v, ok, err)
			}
		}
	}
}

// refusedTLS checks that a push and a blocking pop on ds (and, with
// reads, a receive and a cache Get) each fail with an error that names
// the operation and the certificate, says the write was not sent (a
// refused handshake is not an unknown outcome), and shows no password;
// and that each fails of itself, not at the test's deadline. Over
// Sentinel, every call asks each sentinel again, with go-redis's dial
// retries and command retries: seconds per call, so reads are left out
// there.
func refusedTLS(t *testing.T, ds *DataStore, name string, reads bool) {
	ctx, cancel := context.WithTimeout(bg, 60*time.Second)
	defer cancel()
	q := testQueue[int](t, ds, "q")
	r := testReliable[int](ds, "r", time.Minute, 0)
	c := testCache[int](ds, "c", time.Minute)
	calls := map[string]func() error{
		"push": func() error { return q.Push(ctx, 1) },
		"pop":  func() error { _, _, err := q.Pop(ctx, time.Second); return err },
	}
	if reads {
		calls["receive"] = func() error { _, _, err := r.Receive(ctx, time.Second); return err }
		calls["get"] = func() error { _, _, err := c.Get(ctx); return err }
	}
	for op, call := range calls {
		start := time.Now()
		err := call()
		t.Logf("%s with %s, after %v: %v", op, name, time.Since(start).Round(time.Millisecond), err)
		switch {
		case err == nil:
			t.Errorf("%s with %s succeeded", op, name)
		case ctx.Err() != nil:
			t.Fatalf("%s with %s ran into the test's deadline: %v", op, name, err)
		case !strings.HasPrefix(err.Error(), "storagegen: "+op+" "):
			t.Errorf("%s with %s: %v; want an error that names the operation", op, name, err)
		case strings.Contains(err.Error(), tlsSecret):
			t.Errorf("%s with %s: the error shows the password: %v", op, name, err)
		case name == "no client certificate" && strings.Contains(err.Error(), "connection reset by peer"):
			// The server refused the handshake and closed the connection
			// with the client's last handshake message unread: a reset
			// may reach the client before its alert does.
			t.Logf("%s with %s: the server's alert was lost to a reset", op, name)
		case errors.Is(err, ErrUnknownOutcome):
			t.Errorf("%s with %s: %v; a refused handshake sent nothing", op, name, err)
		case !strings.Contains(err.Error(), "certificate"):
			t.Errorf("%s with %s: %v; want an error that names the certificate", op, name, err)
		}
	}
}
