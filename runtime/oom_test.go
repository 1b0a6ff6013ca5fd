package runtime

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/internal/redistest"
)

// fillMemory sets maxmemory a little above what the server uses now and
// writes filler keys until the server refuses a write with OOM; from then
// on every command that may grow memory is refused (noeviction).
func fillMemory(t *testing.T, raw *redis.Client) {
	t.Helper()
	info, err := raw.Info(bg, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			fmt.Sscan(v, &used)
		}
	}
	limit := used + 3<<20
	if err := raw.ConfigSet(bg, "maxmemory", fmt.Sprint(limit)).Err(); err != nil {
		t.Fatal(err)
	}
	// Big values first, then smaller ones: a command's own arguments
	// count while it runs, so a big SET is refused before a small one is.
	keys := 0
	for _, size := range []int{64 << 10, 1 << 10, 16} {
		filler := strings.Repeat("x", size)
		for {
			err := raw.Set(bg, fmt.Sprint("filler:", keys), filler, 0).Err()
			if err != nil {
				if !strings.HasPrefix(err.Error(), "OOM") {
					t.Fatal(err)
				}
				break
			}
			if keys++; keys > 100_000 {
				t.Fatal("the server never ran out of memory")
			}
		}
	}
	t.Logf("memory full after %d filler keys: maxmemory %d, used before %d", keys, limit, used)
}

// TestFullMemory fills a server (maxmemory, noeviction) and checks that
// nothing is lost and consumers can drain it: Pop moves an undecodable
// item to the dead letters (the LPUSH alone would be refused, after BRPOP
// had taken the item); Receive, Extend, Ack, Nack to the dead letters,
// Peek, Stats, Requeue, Purge and Reclaim work; Push is refused and stores nothing. On a
// server that refuses script flags (simulated), Pop's move is refused
// under OOM too, and its error says the item is lost rather than moved.
func TestFullMemory(t *testing.T) {
	redistest.SingleOnly(t, "fills a server of its own (maxmemory)")
	srv := startServer(t, "--maxmemory-policy", "noeviction")
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	ds := newStore(t, Options{URL: srv.URL(0), Prefix: "oom:"})
	q := NewQueue[map[string]int](ds, &QueueDecl{Name: "plain", Prefix: "oom:", Key: MustKeyPattern("plain")})
	decl := &QueueDecl{Name: "jobs", Prefix: "oom:", Key: MustKeyPattern("jobs"), Lease: 5 * time.Second, MaxDeliveries: 1}
	rq := NewReliableQueue[int](ds, decl)
	strs := NewReliableQueue[string](ds, decl) // pushes items that do not decode as int

	// Before memory is full: one undecodable item in the at-most-once
	// queue, and four items in the at-least-once queue.
	if err := raw.LPush(bg, q.Key(), "not json", "still not json").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rq.PushMany(bg, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := strs.Push(bg, "not an int"); err != nil {
		t.Fatal(err)
	}
	if err := rq.Push(bg, 3); err != nil {
		t.Fatal(err)
	}
	short := NewReliableQueue[int](ds, &QueueDecl{Name: "short", Prefix: "oom:", Key: MustKeyPattern("short"), Lease: 100 * time.Millisecond})
	if err := short.Push(bg, 5); err != nil {
		t.Fatal(err)
	}
	fillMemory(t, raw)
	if err := raw.LPush(bg, "oom:probe", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("LPUSH on a full server = %v; want OOM", err)
	}

	// Pop takes the undecodable item with BRPOP; it must reach the dead
	// letters.
	_, ok, err := q.Pop(bg, time.Second)
	if ok || !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "moved to") {
		t.Fatalf("Pop of an undecodable item on a full server = %v, %v; want ErrDecode, moved to the dead letters", ok, err)
	}
	if dead, err := raw.LRange(bg, DeadKey(q.Key()), 0, -1).Result(); err != nil || len(dead) != 1 || dead[0] != "not json" {
		t.Fatalf("dead letters on a full server = %q, %v; want [not json]", dead, err)
	}

	// Receive, Extend and Ack.
	d, ok, err := rq.Receive(bg, time.Second)
	if err != nil || !ok || d.Value != 1 {
		t.Fatalf("Receive on a full server = %v, %v, %v", d, ok, err)
	}
	if err := d.Extend(bg, 5*time.Second); err != nil {
		t.Errorf("Extend on a full server = %v", err)
	}
	if err := d.Ack(bg); err != nil {
		t.Errorf("Ack on a full server = %v", err)
	}
	// Nack on the last delivery: a dead letter.
	d, ok, err = rq.Receive(bg, time.Second)
	if err != nil || !ok || d.Value != 2 {
		t.Fatalf("Receive on a full server = %v, %v, %v", d, ok, err)
	}
	if err := d.Nack(bg, 0); err != nil {
		t.Errorf("Nack to the dead letters on a full server = %v", err)
	}
	// An undecodable item: Receive's own nack makes it a dead letter.
	if _, _, err := rq.Receive(bg, time.Second); !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "now a dead letter") {
		t.Errorf("Receive of an undecodable item on a full server = %v; want ErrDecode, now a dead letter", err)
	}
	if s, err := rq.Stats(bg); err != nil || s.Dead != 2 || s.Ready != 1 || s.InFlight != 0 {
		t.Errorf("Stats on a full server = %+v, %v; want 2 dead, 1 ready", s, err)
	}
	if dl, err := rq.Dead().Peek(bg, 10); err != nil || len(dl) != 2 {
		t.Errorf("Peek on a full server = %d dead letters, %v; want 2", len(dl), err)
	}
	if n, err := rq.Dead().Requeue(bg, 1); err != nil || n != 1 {
		t.Errorf("Requeue on a full server = %d, %v; want 1", n, err)
	}
	if n, err := rq.Dead().Purge(bg); err != nil || n != 1 {
		t.Errorf("Purge on a full server = %d, %v; want 1", n, err)
	}
	// An expired lease is reclaimed.
	if d, ok, err := short.Receive(bg, time.Second); err != nil || !ok || d.Attempt != 1 {
		t.Fatalf("Receive on a full server = %v, %v, %v", d, ok, err)
	}
	time.Sleep(150 * time.Millisecond)
	if n, err := short.Reclaim(bg); err != nil || n != 1 {
		t.Errorf("Reclaim on a full server = %d, %v; want 1", n, err)
	}
	// Push grows memory by a payload: refused, and nothing is stored.
	if err := rq.Push(bg, 4); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Errorf("Push on a full server = %v; want the server's OOM error", err)
	}
	if n, _ := rq.Len(bg); n != 2 {
		t.Errorf("%d items ready after a refused push; want 2", n)
	}

	// A server that refuses #!lua gets the scripts without flags, which
	// may not write under OOM: the move and the putting back are refused,
	// and the error says so instead of claiming a move.
	old := NewQueue[map[string]int](newStore(t, Options{URL: srv.URL(0), Prefix: "oom:"}), &QueueDecl{Name: "plain", Prefix: "oom:", Key: MustKeyPattern("plain")})
	old.ds.Connection.shebangRefused.Store(true)
	_, _, err = old.Pop(bg, time.Second)
	if !errors.Is(err, ErrDecode) || strings.Contains(err.Error(), "moved to") || !strings.Contains(err.Error(), "lost") {
		t.Errorf("Pop without script flags on a full server = %v; want ErrDecode, and an error that says the item is lost", err)
	} else {
		t.Logf("without script flags: %v", err)
	}
	// Such a server lets a script write under OOM once its first write
	// could not grow memory: receive's (RPOP) and ack's (DEL) cannot.
	oldRQ := NewReliableQueue[int](old.ds, decl)
	if d, ok, err := oldRQ.Receive(bg, time.Second); err != nil || !ok {
		t.Errorf("Receive without script flags on a full server = %v, %v", ok, err)
	} else if err := d.Ack(bg); err != nil {
		t.Errorf("Ack without script flags on a full server = %v", err)
	}
	// With room again, the same failure puts the item back.
	if err := raw.ConfigSet(bg, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// A dead-letter write that fails for another reason (here the dead
	// key holds a string) puts the items back at the tail, in order.
	dead := DeadKey(q.Key())
	if err := raw.Set(bg, dead, "in the way", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.LPush(bg, q.Key(), "bad 1", `{"ok":1}`, "bad 2").Err(); err != nil {
		t.Fatal(err)
	}
	// The queue, tail first: bad 1, {"ok":1}, bad 2. Take the first two
	// and the last as one PopMany.
	vs, err := q.PopMany(bg, 3, time.Second)
	if len(vs) != 1 || !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "put back") {
		t.Errorf("PopMany with the dead key in the way = %v, %v; want one item and an error saying two were put back", vs, err)
	}
	if got, _ := raw.LRange(bg, q.Key(), 0, -1).Result(); strings.Join(got, "|") != "bad 2|bad 1" {
		t.Errorf("queue after putting back = %q; want [bad 2 bad 1] (bad 1 at the tail, popped next)", got)
	}
}
