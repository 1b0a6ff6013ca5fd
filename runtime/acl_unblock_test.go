package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// aclRefusals returns how many times the data nodes' ACL LOG says user was
// refused object (a command such as "client|unblock"), summed over them.
func aclRefusals(t *testing.T, user, object string) int64 {
	t.Helper()
	var total int64
	count := func(c *redis.Client) error {
		entries, err := c.Do(bg, "ACL", "LOG", "128").Slice()
		if err != nil {
			return err
		}
		for _, e := range entries {
			m := map[string]any{}
			switch f := e.(type) {
			case []any: // RESP2
				for i := 0; i+1 < len(f); i += 2 {
					m[fmt.Sprint(f[i])] = f[i+1]
				}
			case map[any]any: // RESP3
				for k, v := range f {
					m[fmt.Sprint(k)] = v
				}
			}
			if m["username"] == user && m["object"] == object {
				n, _ := m["count"].(int64)
				total += n
			}
		}
		return nil
	}
	var err error
	switch c := rawClient(t).(type) {
	case *redis.ClusterClient:
		err = c.ForEachShard(bg, func(_ context.Context, n *redis.Client) error { return count(n) })
	case *redis.Client:
		err = count(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestUnblockRefused: for a user that may run CLIENT ID but not CLIENT
// UNBLOCK (the README's line without +client|unblock: an operator who
// will not let the application unblock other clients), the runtime finds
// out once, before the first wait, and cuts waits into slices as it does
// without CLIENT at all; it never sends the refused CLIENT UNBLOCK in a
// loop. Before, every cancelled pop sent it every 2ms until the pop's
// whole timeout had passed (the cancel waited that long), and every pop
// that timed out sent it until the server's next tick.
func TestUnblockRefused(t *testing.T) {
	if !redistest.Limited() {
		t.Skip("REDIS_URL is set: the test makes users on servers it does not own")
	}
	const user, pw = "storagegen-nounblock", "nounblock-pw"
	prefix := testPrefix(t)
	rules := slices.DeleteFunc(redistest.AppUserRules(prefix), func(r string) bool { return r == "+client|unblock" })
	redistest.SetUser(t, user, append([]string{"reset", "on", ">" + pw}, rules...)...)
	before := aclRefusals(t, user, "client|unblock")
	ds := newStore(t, Options{URL: redistest.WithUser(redisURL, url.UserPassword(user, pw)), Prefix: prefix})
	q := testQueue[int](t, ds, "q")
	// A pop that an item ends, neither cancelled nor timed out, sends no
	// CLIENT UNBLOCK of its own: a refusal by then was the runtime's one
	// try before its first wait.
	got := make(chan error, 1)
	go func() {
		v, ok, err := q.Pop(bg, 10*time.Second)
		if err == nil && (!ok || v != 5) {
			err = fmt.Errorf("got %v, %v; want 5", v, ok)
		}
		got <- err
	}()
	waitBlocked(t, user)
	if err := q.Push(bg, 5); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("blocking Pop: %v", err)
	}
	if n := aclRefusals(t, user, "client|unblock") - before; n != 1 {
		t.Errorf("CLIENT UNBLOCK refused %d times before the first wait ended; want 1: the runtime tries it before waiting", n)
	}
	for range 3 {
		// A cancelled pop returns context.Canceled, and an item pushed
		// after it is still there.
		ctx, cancel := context.WithCancel(bg)
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, _, err := q.Pop(ctx, 2*time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Pop = %v; want context.Canceled", err)
		}
		if _, ok, err := q.Pop(bg, 30*time.Millisecond); ok || err != nil {
			t.Fatalf("Pop of an empty queue = %v, %v", ok, err)
		}
	}
	if err := q.Push(bg, 7); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := q.Pop(bg, time.Second); !ok || err != nil || v != 7 {
		t.Fatalf("Pop = %v, %v, %v; want 7", v, ok, err)
	}
	if n := aclRefusals(t, user, "client|unblock") - before; n > 1 {
		t.Errorf("CLIENT UNBLOCK refused %d times; want it tried once at most, then waits in slices", n)
	}
}

// waitBlocked waits, at most 10s, until a connection of user is blocked
// (CLIENT LIST flags b) on one of the data nodes.
func waitBlocked(t *testing.T, user string) {
	t.Helper()
	blocked := func(c *redis.Client) (bool, error) {
		list, err := c.ClientList(bg).Result()
		if err != nil {
			return false, err
		}
		for _, l := range strings.Split(list, "\n") {
			f := strings.Fields(l)
			if slices.Contains(f, "user="+user) && slices.ContainsFunc(f, func(s string) bool {
				return strings.HasPrefix(s, "flags=") && strings.Contains(s, "b")
			}) {
				return true, nil
			}
		}
		return false, nil
	}
	admin := rawClient(t)
	for i := 0; i < 2000; i++ {
		var found atomic.Bool
		var err error
		switch c := admin.(type) {
		case *redis.ClusterClient:
			err = c.ForEachShard(bg, func(_ context.Context, n *redis.Client) error {
				b, err := blocked(n)
				if b {
					found.Store(true)
				}
				return err
			})
		case *redis.Client:
			var b bool
			b, err = blocked(c)
			found.Store(b)
		}
		if err != nil {
			t.Fatal(err)
		}
		if found.Load() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no connection of %s blocked within 10s", user)
}
