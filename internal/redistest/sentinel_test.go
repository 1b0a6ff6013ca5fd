package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSentinel: a failover client writes and reads through the group's
// master; after SENTINEL FAILOVER the replica is master, the old primary
// replicates it, and the client writes to the new master.
func TestSentinel(t *testing.T) {
	start := time.Now()
	g, err := StartSentinel()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	t.Logf("sentinel group ready in %v: primary %s, replica %s, sentinels %v",
		time.Since(start).Round(time.Millisecond), g.Primary.Addr, g.Replica.Addr, g.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: g.MasterName, SentinelAddrs: g.Addrs(), DialTimeout: time.Second,
	})
	defer fc.Close()

	for i := range 20 {
		key := fmt.Sprintf("key:%d", i)
		if err := fc.Set(ctx, key, "v"+key, 0).Err(); err != nil {
			t.Fatalf("SET %s through the failover client: %v", key, err)
		}
		if got, err := g.Primary.client.Load().Get(ctx, key).Result(); err != nil || got != "v"+key {
			t.Fatalf("GET %s on the primary %s: %q, %v", key, g.Primary.Addr, got, err)
		}
	}
	if m, err := g.Master(ctx); err != nil || m != g.Primary {
		t.Fatalf("the sentinels name %v (%v); want %s", m, err, g.Primary.Addr)
	}

	start = time.Now()
	if err := g.Sentinels[0].client.Load().Do(ctx, "SENTINEL", "FAILOVER", g.MasterName).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER %s: %v", g.MasterName, err)
	}
	err = waitFor("SENTINEL FAILOVER", 30*time.Second, func(ctx context.Context) error {
		if m, err := g.Master(ctx); err != nil || m != g.Replica {
			return fmt.Errorf("the sentinels name %v (%v)", m, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if role, err := g.Primary.Role(ctx); err != nil || role != "slave" {
		t.Fatalf("after the failover the old primary %s is %q (%v); want slave", g.Primary.Addr, role, err)
	}
	t.Logf("SENTINEL FAILOVER: the replica is master and the group whole after %v", time.Since(start).Round(time.Millisecond))

	// The client follows: its writes reach the new master, within 30s.
	start = time.Now()
	key := "after-failover"
	for i := 0; ; i++ {
		err := fc.Set(ctx, key, "v", 0).Err()
		if err == nil {
			break
		}
		if i >= 300 || time.Since(start) > 30*time.Second {
			t.Fatalf("the failover client could not write within 30s of the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := g.Replica.client.Load().Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET %s on the new master %s: %q, %v", key, g.Replica.Addr, got, err)
	}
	if got, err := fc.Get(ctx, "key:0").Result(); err != nil || got != "vkey:0" {
		t.Fatalf("GET key:0 through the failover client after the failover: %q, %v", got, err)
	}
	t.Logf("the failover client wrote to the new master after %v", time.Since(start).Round(time.Millisecond))
}
