package runtime

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestEvictionPolicyWarning: the first at-least-once call of a DataStore
// warns, once, when the server may evict keys (maxmemory-policy other than
// noeviction); not on a noeviction server; and not, nor fail, for a user
// who may not read the configuration (a managed server's NOPERM).
func TestEvictionPolicyWarning(t *testing.T) {
	redistest.SingleOnly(t, "servers of its own with eviction policies and ACL users")
	evicting := startServer(t, "--maxmemory-policy", "allkeys-lru")
	strict := startServer(t)
	admin := redis.NewClient(&redis.Options{Addr: evicting.Addr})
	defer admin.Close()
	if err := admin.Do(bg, "ACL", "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, url string
		warn      bool
	}{
		{"allkeys-lru", "redis://" + evicting.Addr + "/0", true},
		{"noeviction", "redis://" + strict.Addr + "/0", false},
		{"allkeys-lru, no CONFIG for the user", "redis://app:app-pw@" + evicting.Addr + "/0", false},
	} {
		var buf lockedBuffer
		ds := newStore(t, Options{URL: c.url, Prefix: "evict:", Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		q := testReliable[int](ds, "q", time.Minute, 0)
		for range 3 {
			if err := q.Push(bg, 1); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if _, _, err := q.Receive(bg, 0); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		logged := buf.String()
		if c.name == "allkeys-lru, no CONFIG for the user" && !strings.Contains(logged, "NOPERM") {
			t.Errorf("%s: logged %q; want the NOPERM at debug level", c.name, logged)
		}
		if n := strings.Count(logged, "maxmemory-policy=allkeys-lru"); (n == 1) != c.warn || n > 1 {
			t.Errorf("%s: logged %q; want a warning: %v, at most once", c.name, logged, c.warn)
		}
	}
}

// TestOutOfMemoryIsTyped: a push refused by a full server wraps
// ErrOutOfMemory and the server's reply.
func TestOutOfMemoryIsTyped(t *testing.T) {
	redistest.SingleOnly(t, "fills a server of its own (maxmemory)")
	srv := startServer(t, "--maxmemory", "1", "--maxmemory-policy", "noeviction")
	ds := newStore(t, Options{URL: "redis://" + srv.Addr + "/0", Prefix: "oom:"})
	for _, push := range []func() error{
		func() error { return testQueue[int](t, ds, "q").Push(bg, 1) },
		func() error { return testReliable[int](ds, "r", time.Minute, 0).Push(bg, 1) },
		func() error { return testCache[int](ds, "c", time.Minute).Set(bg, 1) },
	} {
		if err := push(); !errors.Is(err, ErrOutOfMemory) || !strings.Contains(err.Error(), "OOM") {
			t.Errorf("a write to a full server = %v; want ErrOutOfMemory with the server's OOM reply", err)
		}
	}
}
