package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func startCluster(t *testing.T, opts ...Option) *Cluster {
	t.Helper()
	start := time.Now()
	c, err := StartCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster formed in %v: primaries %s %s %s", time.Since(start).Round(time.Millisecond),
		c.Primaries[0].Addr, c.Primaries[1].Addr, c.Primaries[2].Addr)
	t.Cleanup(func() { c.Close() })
	return c
}

// formedOwner returns the index of the primary that served slot when c
// was formed.
func formedOwner(c *Cluster, slot int) int {
	for i := range c.Primaries {
		if first, last := c.Slots(i); first <= slot && slot <= last {
			return i
		}
	}
	return -1
}

// TestCluster: a cluster client writes keys that land on all three
// primaries and reads them back; each key is on the node that serves the
// slot CLUSTER KEYSLOT gives, and on no other primary.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()

	perPrimary := make([]int, len(c.Primaries))
	keys := map[string]int{} // key -> the index of the primary of its slot
	for i := 0; i < 1000 && min(perPrimary[0], perPrimary[1], perPrimary[2]) < 5; i++ {
		key := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, key, "v"+key, 0).Err(); err != nil {
			t.Fatalf("SET %s through the cluster client: %v", key, err)
		}
		slot, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		p := formedOwner(c, int(slot))
		if p < 0 {
			t.Fatalf("CLUSTER KEYSLOT %s = %d: out of every primary's range", key, slot)
		}
		owner, err := c.Owner(ctx, int(slot))
		if err != nil {
			t.Fatal(err)
		}
		if owner != c.Primaries[p] {
			t.Fatalf("slot %d of %s: served by %s, formed on %s", slot, key, owner.Addr, c.Primaries[p].Addr)
		}
		perPrimary[p]++
		keys[key] = p
	}
	if min(perPrimary[0], perPrimary[1], perPrimary[2]) < 5 {
		t.Fatalf("keys per primary %v after 1000 keys", perPrimary)
	}
	for key, p := range keys {
		if got, err := cc.Get(ctx, key).Result(); err != nil || got != "v"+key {
			t.Fatalf("GET %s through the cluster client: %q, %v", key, got, err)
		}
		for i, n := range c.Primaries {
			// A plain client on one node: a key of its slots is there;
			// for another's the node answers MOVED.
			got, err := n.client.Load().Get(ctx, key).Result()
			if i == p && (err != nil || got != "v"+key) {
				t.Fatalf("GET %s on its primary %s: %q, %v", key, n.Addr, got, err)
			}
			if i != p && (err == nil || !isMoved(err)) {
				t.Fatalf("GET %s on primary %s, which does not serve its slot: %q, %v; want MOVED", key, n.Addr, got, err)
			}
		}
	}
	t.Logf("keys per primary: %v", perPrimary)
}

func isMoved(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "MOVED ") }

// TestClusterFailover: a cluster client keeps writing and reading a
// primary's slots through CLUSTER FAILOVER on its replica, then through
// the death of the new primary, which its old one replaces; the killed
// node comes back as a replica.
func TestClusterFailover(t *testing.T) {
	c := startCluster(t, WithNodeTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second})
	defer cc.Close()
	key := "{failover}:k" // its slot is on primary 0
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if formedOwner(c, int(slot)) != 0 {
		t.Fatalf("%s: slot %d is not on primary 0", key, slot)
	}

	// write sets key to v and reads it back through the client, retrying
	// for at most 30s while the cluster moves.
	write := func(v string) time.Duration {
		t.Helper()
		start := time.Now()
		var err error
		for i := 0; i < 300 && time.Since(start) < 30*time.Second; i++ {
			if err = cc.Set(ctx, key, v, 0).Err(); err == nil {
				var got string
				if got, err = cc.Get(ctx, key).Result(); err == nil && got == v {
					return time.Since(start)
				}
				if err == nil {
					t.Fatalf("GET %s = %q after SET %q", key, got, v)
				}
			}
			// go-redis reloads its slot map on MOVED, on READONLY and
			// every ClusterStateReloadInterval (60s by default), not when
			// a primary is unreachable: whoever retries must ask.
			cc.ReloadState(ctx)
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the cluster client could not write and read %s within 30s: %v", key, err)
		return 0
	}
	write("before")

	old, rep := c.Primaries[0], c.Replicas[0]
	start := time.Now()
	if err := rep.client.Load().ClusterFailover(ctx).Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", rep.Addr, err)
	}
	err = waitFor("CLUSTER FAILOVER", 30*time.Second, func(ctx context.Context) error {
		if role, err := rep.Role(ctx); err != nil || role != "master" {
			return fmt.Errorf("%s is %q (%v)", rep.Addr, role, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if role, err := rep.Role(ctx); err != nil || role != "master" {
		t.Fatalf("after CLUSTER FAILOVER, %s is %q (%v), want master", rep.Addr, role, err)
	}
	if owner, err := c.Owner(ctx, int(slot)); err != nil || owner != rep {
		t.Fatalf("after CLUSTER FAILOVER, slot %d is on %v (%v), want %s", slot, owner, err, rep.Addr)
	}
	t.Logf("CLUSTER FAILOVER: cluster whole after %v; the client wrote after %v more",
		time.Since(start).Round(time.Millisecond), write("after failover").Round(time.Millisecond))

	start = time.Now()
	if err := rep.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the new primary: the client wrote after %v", write("after kill").Round(time.Millisecond))
	if err := c.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if owner, err := c.Owner(ctx, int(slot)); err != nil || owner != old {
		t.Fatalf("after killing %s, slot %d is on %v (%v), want %s", rep.Addr, slot, owner, err, old.Addr)
	}

	start = time.Now()
	if err := rep.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if role, err := rep.Role(ctx); err != nil || role != "slave" {
		t.Fatalf("restarted %s is %q (%v), want slave", rep.Addr, role, err)
	}
	t.Logf("restarted: back as a replica after %v", time.Since(start).Round(time.Millisecond))
	write("after restart")
}
