package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterTLS: a cluster started WithTLS forms with its bus and
// replication over TLS (StartCluster's Wait checks every replica's link);
// a cluster client with the CA and the client certificate writes keys on
// every primary and reads them back; one without a client certificate, or
// trusting the wrong CA, gets nothing through.
func TestClusterTLS(t *testing.T) {
	c := startCluster(t, WithTLS())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range c.Nodes() {
		if args := strings.Join(n.Server.args, " "); !strings.Contains(args, "--port 0 --tls-port") {
			t.Fatalf("node %s runs with %v; want TLS only", n.Addr, n.Server.args)
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()[:1], TLSConfig: c.TLS.Config()})
	defer cc.Close()
	perPrimary := map[string]int{}
	for i := 0; i < 200 && len(perPrimary) < 3; i++ {
		key := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s over TLS: %v", key, err)
		}
		slot, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		owner, err := c.Owner(ctx, int(slot))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := owner.client.Load().Get(ctx, key).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s on its owner %s = %q, %v", key, owner.Addr, got, err)
		}
		perPrimary[owner.Addr]++
	}
	if len(perPrimary) != 3 {
		t.Fatalf("keys landed on %d primaries; want 3", len(perPrimary))
	}
	refused(t, c.Addrs()[0], c.TLS)
}

// TestSentinelTLS: a Sentinel group started WithTLS: replication and the
// sentinels' links run over TLS (StartSentinel's Wait checks that every
// sentinel sees the replica and the other sentinels); a failover client
// with the CA and the client certificate, for the sentinels and the
// primary alike, writes through the primary; the replica, killed and
// restarted (the harness's checks over TLS), replicates again.
func TestSentinelTLS(t *testing.T) {
	g, err := StartSentinel(WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName, SentinelAddrs: g.Addrs(), TLSConfig: g.TLS.Config(), DialTimeout: time.Second})
	defer fc.Close()
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the failover client over TLS: %v", err)
	}
	if got, err := g.Primary.client.Load().Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET on the primary = %q, %v", got, err)
	}
	refused(t, g.Sentinels[0].Addr, g.TLS)
	refused(t, g.Primary.Addr, g.TLS)
	if err := g.Replica.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := g.Replica.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := g.Replica.client.Load().Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET on the restarted replica = %q, %v", got, err)
	}
}

// refused checks that addr takes no command from a client in plain text,
// without a client certificate, trusting the wrong CA, or expecting
// another name, and that it takes one from a client with the right setup.
func refused(t *testing.T, addr string, certs *TLS) {
	t.Helper()
	noCert := certs.Config()
	noCert.Certificates = nil
	wrongCA := certs.Config()
	wrongCA.RootCAs = certs.WrongCA
	wrongName := certs.Config()
	wrongName.ServerName = "not-this.example"
	for name, conf := range map[string]*tls.Config{"plain text": nil, "no client certificate": noCert, "wrong CA": wrongCA, "wrong name": wrongName} {
		cl := nodeClient(addr, conf)
		err := cl.Ping(context.Background()).Err()
		cl.Close()
		if err == nil {
			t.Errorf("%s: PING %s with %s succeeded", name, addr, name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	cl := nodeClient(addr, certs.Config())
	defer cl.Close()
	if err := cl.Ping(context.Background()).Err(); err != nil {
		t.Errorf("PING %s with the right setup: %v", addr, err)
	}
}
