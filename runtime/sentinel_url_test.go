package runtime

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestSentinelURLCredentials: in a Sentinel group whose data nodes know an
// ACL user the sentinels do not, and whose sentinels require a password
// of their own, a redis+sentinel:// URL's user info reaches the data nodes
// only (the sentinels would refuse it) and SentinelPassword the sentinels
// only (the data nodes would refuse it): pushes and pops work; without
// SentinelPassword, or with the data nodes' password swapped for the
// sentinels', every call fails, and no error shows a password.
func TestSentinelURLCredentials(t *testing.T) {
	redistest.SingleOnly(t, "starts a Sentinel group of its own, the same whatever the run's topology")
	g, err := redistest.StartSentinel()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const dataPW, sentinelPW = "QJdata-pw", "QJsentinel-pw"
	setUser := func(addr string, args ...any) {
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
		defer c.Close()
		if err := c.Do(bg, append([]any{"ACL", "SETUSER"}, args...)...).Err(); err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", addr, err)
		}
	}
	for _, n := range g.Nodes() {
		setUser(n.Addr, "app", "on", ">"+dataPW, "~*", "+@all")
	}
	// The sentinels' default user gets a password: a failover client that
	// logs in to them without SentinelPassword is refused.
	for _, s := range g.Sentinels {
		setUser(s.Addr, "default", "on", "resetpass", ">"+sentinelPW)
	}
	base := strings.TrimPrefix(g.URL(nil, 0), "redis+sentinel://") + "&dial_timeout=500ms"
	u := func(ui *url.Userinfo) string { return "redis+sentinel://" + ui.String() + "@" + base }

	ds := newStore(t, Options{URL: u(url.UserPassword("app", dataPW)), SentinelPassword: sentinelPW, Prefix: "sentinelurl:"})
	q := testQueue[int](t, ds, "q")
	if err := q.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	if vs, err := q.PopMany(bg, 5, time.Second); err != nil || len(vs) != 2 {
		t.Fatalf("PopMany = %v, %v", vs, err)
	}

	for name, o := range map[string]Options{
		"no SentinelPassword": {URL: u(url.UserPassword("app", dataPW))},
		"passwords swapped":   {URL: u(url.UserPassword("app", sentinelPW)), SentinelPassword: dataPW},
		"sentinels' password": {URL: u(url.UserPassword("default", sentinelPW))},
	} {
		ds := newStore(t, Options{URL: o.URL, SentinelPassword: o.SentinelPassword, Prefix: "sentinelurl:", PoolSize: 1})
		ctx, cancel := context.WithTimeout(bg, 3*time.Second)
		err := testQueue[int](t, ds, "q").Push(ctx, 1)
		cancel()
		if err == nil {
			t.Errorf("%s: Push succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), "QJ") {
			t.Errorf("%s: the error shows a password: %v", name, err)
		}
	}
}
