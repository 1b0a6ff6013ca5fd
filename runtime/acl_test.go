package runtime

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestKeyOutsidePrefixRefused: the tests run as an ACL user limited to
// their prefixes and to the commands of the README's ACL SETUSER line
// (redistest.Main creates it on every data node). A store with another
// prefix is refused by the server on every kind of call, and the runtime
// says so with ErrPermission, naming the operation and the key.
func TestKeyOutsidePrefixRefused(t *testing.T) {
	if !redistest.Limited() {
		t.Skip("REDIS_URL is set: the tests run as its user, not the limited one")
	}
	outside := newStore(t, Options{Prefix: "outside:"})
	inside := newStore(t, Options{})
	for _, tc := range []struct {
		op  string
		key string
		err error
	}{
		{"push", QueueKey("outside:", "q"), outside.Queue.Push(bg, "q", 1)},
		{"pop", QueueKey("outside:", "q"), second(outside.Queue.Pop(bg, "q", 100*time.Millisecond, new(int)))},
		{"len", QueueKey("outside:", "q"), second(outside.Queue.Len(bg, "q"))},
		{"set", CacheKey("outside:", "k"), outside.Cache.Set(bg, "k", 1, time.Minute)},
		{"get", CacheKey("outside:", "k"), second(outside.Cache.Get(bg, "k", new(int)))},
		{"push", testReliable[int](outside, "r", time.Minute, 0).Key(), testReliable[int](outside, "r", time.Minute, 0).Push(bg, 1)},
	} {
		var e *Error
		if !errors.Is(tc.err, ErrPermission) || !errors.As(tc.err, &e) || e.Op != tc.op || e.Key != tc.key ||
			!strings.Contains(tc.err.Error(), "NOPERM") {
			t.Errorf("%s %s outside the user's keys = %v; want ErrPermission for %s %q, with the server's NOPERM", tc.op, tc.key, tc.err, tc.op, tc.key)
		}
	}
	// The same calls inside the prefix work.
	if err := inside.Queue.Push(bg, "q", 1); err != nil {
		t.Fatal(err)
	}
	if err := testReliable[int](inside, "r", time.Minute, 0).Push(bg, 1); err != nil {
		t.Fatal(err)
	}
	if err := inside.Cache.Set(bg, "k", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
}
