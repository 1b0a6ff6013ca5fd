package inspect

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// TestMoveAcrossLosesNothing: requeueing an at-most-once dead letter
// between two keys in different cluster slots cannot be atomic. When the
// push to the queue fails (here: an ACL that refuses LPUSH and RPUSH, as a
// crash of the inspector between its two commands would), the dead letter
// must still be in the dead-letter list: copied first, removed after, a
// failure in between leaves a duplicate at worst, never a loss.
func TestMoveAcrossLosesNothing(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "ro", "on", ">pw", "~*", "+@all", "-lpush", "-rpush").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.RPush(ctx, "q:dead", "newer", "oldest").Err(); err != nil {
		t.Fatal(err)
	}
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "ro", Password: "pw"})
	defer cl.Close()
	if err := moveAcross(ctx, cl, "q:dead", "q"); err == nil {
		t.Fatal("moveAcross with LPUSH refused: no error")
	}
	dead, err := admin.LRange(ctx, "q:dead", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || dead[1] != "oldest" {
		t.Fatalf("after a failed move the dead letters are %q, want [newer oldest]: the item was lost", dead)
	}

	// And the move itself: the oldest (the tail) goes to the head of the
	// queue, behind the waiting items, and leaves the dead letters.
	if err := admin.LPush(ctx, "q", "waiting").Err(); err != nil {
		t.Fatal(err)
	}
	if err := moveAcross(ctx, admin, "q:dead", "q"); err != nil {
		t.Fatal(err)
	}
	q, _ := admin.LRange(ctx, "q", 0, -1).Result()
	dead, _ = admin.LRange(ctx, "q:dead", 0, -1).Result()
	if len(q) != 2 || q[0] != "oldest" || q[1] != "waiting" || len(dead) != 1 || dead[0] != "newer" {
		t.Fatalf("after a move: queue %q, dead %q; want [oldest waiting], [newer]", q, dead)
	}
	if err := moveAcross(ctx, admin, "empty:dead", "q"); err != redis.Nil {
		t.Fatalf("moveAcross from an empty list: %v, want redis.Nil", err)
	}
}
