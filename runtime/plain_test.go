package runtime

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/redistest"
)

// The plain layout's tests run on every topology: on a cluster, a plain
// queue's key and its dead-letter list are in different slots, and
// values may put a hash tag of their own into a key.

func plainQueueDecl(ds *DataStore) *QueueDecl {
	return &QueueDecl{Name: "node_edge", Prefix: ds.prefix, Key: MustKeyPattern("queue_{source_id}_{target_id}"), Layout: LayoutPlain}
}

func plainCacheDecl(ds *DataStore) *CacheDecl {
	return &CacheDecl{Name: "node_output", Prefix: ds.prefix, Key: MustKeyPattern("{node_id}_output"), Layout: LayoutPlain, TTL: time.Hour}
}

// A plain queue and cache use the keys the Python storage system writes,
// and read what it wrote there (LPUSH and SET of JSON, as its QueueStore
// and CacheStore do), and it reads what they write.
func TestPlainKeysAreThePythonSystems(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	q := NewQueue[map[string]any](ds, plainQueueDecl(ds), "node_5", "node_8")
	if want := ds.prefix + "queue:queue_node_5_node_8"; q.Key() != want {
		t.Fatalf("Key() = %q, want %q", q.Key(), want)
	}
	if err := raw.LPush(bg, q.Key(), `{"from":"python"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(bg, map[string]any{"from": "go"}); err != nil {
		t.Fatal(err)
	}
	got, err := q.PopMany(bg, 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]map[string]any{{"from": "python"}, {"from": "go"}}, got); diff != "" {
		t.Errorf("popped (-want +got):\n%s", diff)
	}

	c := NewCache[map[string]any](ds, plainCacheDecl(ds), "node_1")
	if want := ds.prefix + "cache:node_1_output"; c.Key() != want {
		t.Fatalf("Key() = %q, want %q", c.Key(), want)
	}
	if err := raw.Set(bg, c.Key(), `{"status":"ok"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(bg); err != nil || !ok || v["status"] != "ok" {
		t.Fatalf("Get of the Python system's entry = %v, %v, %v", v, ok, err)
	}
	if err := c.Set(bg, map[string]any{"status": "go"}); err != nil {
		t.Fatal(err)
	}
	if s, err := raw.Get(bg, c.Key()).Result(); err != nil || s != `{"status":"go"}` {
		t.Fatalf("GET %s = %q, %v", c.Key(), s, err)
	}
	if ttl, err := c.TTL(bg); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL = %v, %v; want the schema's hour", ttl, err)
	}

	// The tagged layout of the same pattern and values is another key.
	tagged := NewQueue[int](ds, &QueueDecl{Name: "node_edge", Prefix: ds.prefix, Key: MustKeyPattern("queue_{source_id}_{target_id}")}, "node_5", "node_8")
	if want := ds.prefix + "queue:{queue_node%5F5_node%5F8}"; tagged.Key() != want {
		t.Errorf("tagged Key() = %q, want %q", tagged.Key(), want)
	}
}

// In the plain layout two tuples can give one key, the Python system's own
// ambiguity: ("a_b", "c") and ("a", "b_c") are one queue.
func TestPlainTuplesShareAKey(t *testing.T) {
	ds := newStore(t, Options{})
	one := NewQueue[int](ds, plainQueueDecl(ds), "a_b", "c")
	other := NewQueue[int](ds, plainQueueDecl(ds), "a", "b_c")
	if one.Key() != other.Key() {
		t.Fatalf("keys %q and %q differ", one.Key(), other.Key())
	}
	if err := one.Push(bg, 7); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := other.Pop(bg, time.Second); err != nil || !ok || v != 7 {
		t.Fatalf("Pop through the other tuple = %v, %v, %v", v, ok, err)
	}
}

// Values that would make a key unusable are refused before anything is
// sent, by every call: empty, control bytes.
func TestPlainValuesRefused(t *testing.T) {
	ds := newStore(t, Options{})
	for _, v := range []string{"", "\x00", "a\nb", "tab\there", "\x1b[31m", "del\x7f", "\r"} {
		q := NewQueue[int](ds, plainQueueDecl(ds), "node", v)
		c := NewCache[int](ds, plainCacheDecl(ds), v)
		errs := map[string]error{"push": q.Push(bg, 1), "set": c.Set(bg, 1)}
		_, _, errs["pop"] = q.Pop(bg, 0)
		_, errs["len"] = q.Len(bg)
		_, _, errs["get"] = c.Get(bg)
		_, errs["delete"] = c.Delete(bg)
		_, errs["exists"] = c.Exists(bg)
		for op, err := range errs {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s with value %q = %v; want ErrInvalidArgument", op, v, err)
			}
		}
	}
	if keys, err := redistest.Keys(bg, rawClient(t), ds.prefix+"*"); err != nil || len(keys) != 0 {
		t.Errorf("keys after refused calls: %q, %v", keys, err)
	}
}

// Hostile values that a plain key may hold go in as they are and work
// like any other: the pattern's separators, '%' (never an escape here),
// braces (a hash tag of the value's making, on a cluster), glob
// characters, spaces, invalid UTF-8, a long value.
func TestPlainHostileValues(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	for _, v := range []string{"a_b", "%5F", "{tag}", "}{", "{}", "*", "?[a-z]\\", "with space", "\xff\xfe", "é", strings.Repeat("long", 4096), "x:dead"} {
		q := NewQueue[string](ds, plainQueueDecl(ds), v, "t")
		wantKey := ds.prefix + "queue:queue_" + v + "_t"
		if q.Key() != wantKey {
			t.Errorf("value %q: Key() = %q, want %q", short(v), short(q.Key()), short(wantKey))
			continue
		}
		if err := q.PushMany(bg, "one", "two"); err != nil {
			t.Fatalf("value %q: Push: %v", short(v), err)
		}
		if n, err := raw.LLen(bg, wantKey).Result(); err != nil || n != 2 {
			t.Errorf("value %q: LLEN of the key = %d, %v", short(v), n, err)
		}
		if n, err := q.Len(bg); err != nil || n != 2 {
			t.Errorf("value %q: Len = %d, %v", short(v), n, err)
		}
		if got, err := q.PopMany(bg, 5, time.Second); err != nil || !cmp.Equal(got, []string{"one", "two"}) {
			t.Errorf("value %q: PopMany = %q, %v", short(v), got, err)
		}

		c := NewCache[string](ds, plainCacheDecl(ds), v)
		if want := ds.prefix + "cache:" + v + "_output"; c.Key() != want {
			t.Errorf("value %q: cache Key() = %q, want %q", short(v), short(c.Key()), short(want))
			continue
		}
		if err := c.Set(bg, "entry"); err != nil {
			t.Fatalf("value %q: Set: %v", short(v), err)
		}
		if got, ok, err := c.Get(bg); err != nil || !ok || got != "entry" {
			t.Errorf("value %q: Get = %q, %v, %v", short(v), short(got), ok, err)
		}
		if ok, err := c.Exists(bg); err != nil || !ok {
			t.Errorf("value %q: Exists = %v, %v", short(v), ok, err)
		}
		if ok, err := c.Delete(bg); err != nil || !ok {
			t.Errorf("value %q: Delete = %v, %v", short(v), ok, err)
		}
	}
	// A glob character in a value is no pattern: the keys of other
	// values are untouched.
	other := NewCache[int](ds, plainCacheDecl(ds), "node")
	if err := other.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCache[int](ds, plainCacheDecl(ds), "*").Delete(bg); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.Exists(bg); err != nil || !ok {
		t.Errorf("Delete of value \"*\" removed %q: %v, %v", other.Key(), ok, err)
	}
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// An item a plain queue cannot decode goes to its dead-letter list,
// <key>:dead, which on a cluster is in another slot than the queue: the
// dead-letter script takes that one key.
func TestPlainDeadLetters(t *testing.T) {
	ds := newStore(t, Options{})
	raw := rawClient(t)
	var q Queue[map[string]int]
	for i := range 100 {
		q = NewQueue[map[string]int](ds, plainQueueDecl(ds), fmt.Sprintf("node_%d", i), "sink")
		if keyspace.Slot(q.Key()) != keyspace.Slot(DeadKey(q.Key())) {
			break
		}
	}
	if keyspace.Slot(q.Key()) == keyspace.Slot(DeadKey(q.Key())) {
		t.Fatal("found no queue whose dead letters are in another slot")
	}
	if err := raw.LPush(bg, q.Key(), `{"a":1}`, "not json", `{"b":2}`, `{"a":"x"}`).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := q.PopMany(bg, 10, time.Second)
	if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "moved to") {
		t.Fatalf("PopMany = %v, %v; want ErrDecode and the items moved", got, err)
	}
	if diff := cmp.Diff([]map[string]int{{"a": 1}, {"b": 2}}, got); diff != "" {
		t.Errorf("popped (-want +got):\n%s", diff)
	}
	dead, err := raw.LRange(bg, DeadKey(q.Key()), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`{"a":"x"}`, "not json"}, dead); diff != "" {
		t.Errorf("dead letters, newest first (-want +got):\n%s", diff)
	}
	if n, err := q.Len(bg); err != nil || n != 0 {
		t.Errorf("Len = %d, %v; want the queue empty", n, err)
	}
}

// Concurrent pushes, pops, sets and gets on plain keys of many slots share
// batches (one pipeline of single-key commands), and every item arrives
// once.
func TestPlainBatches(t *testing.T) {
	ds := newStore(t, Options{})
	const queues, perQueue = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, queues*4)
	for i := range queues {
		q := NewQueue[int](ds, plainQueueDecl(ds), fmt.Sprintf("src_%d", i), "dst")
		c := NewCache[int](ds, plainCacheDecl(ds), fmt.Sprintf("node_%d", i))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n := range perQueue {
				if err := q.Push(bg, n); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for n := range perQueue {
				if err := c.Set(bg, n); err != nil {
					errs <- err
					return
				}
				if v, ok, err := c.Get(bg); err != nil || !ok || v != n {
					errs <- fmt.Errorf("Get %s = %d, %v, %v; want %d", c.Key(), v, ok, err, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range queues {
		q := NewQueue[int](ds, plainQueueDecl(ds), fmt.Sprintf("src_%d", i), "dst")
		var got []int
		for round := 0; len(got) < perQueue && round < 10; round++ {
			vs, err := q.PopMany(bg, perQueue, 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, vs...)
		}
		want := make([]int, perQueue)
		for n := range want {
			want[n] = n
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s popped (-want +got):\n%s", q.Key(), diff)
		}
	}
}

// A plain local cache is invalidated by another client's write to its
// plain key, as a tagged one is.
func TestPlainLocalCache(t *testing.T) {
	localCachesOnly(t)
	ds := newStore(t, Options{})
	decl := plainCacheDecl(ds)
	decl.Local = 10
	c := NewCache[int](ds, decl, "node_1")
	if err := c.Set(bg, 1); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, 1)
	mustGet(t, c, 1)
	if !cached(localStoreOf(t, ds, decl), ds.prefix+"cache:node_1_output") {
		t.Fatal("the plain key is not cached")
	}
	if err := rawClient(t).Set(bg, c.Key(), "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		v, ok, err := c.Get(bg)
		if err != nil || !ok {
			t.Fatalf("Get = %v, %v, %v", v, ok, err)
		}
		if v == 2 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after 5s Get still returns %d: the invalidation of the plain key never arrived", v)
		}
	}
	// A tagged declaration of the same name and pattern is another cache.
	tagged := *decl
	tagged.Layout = LayoutTagged
	if localKeyOf(&tagged) == localKeyOf(decl) {
		t.Error("a tagged and a plain declaration share a local cache")
	}
}

// What the plain layout cannot do is refused: an at-least-once queue (its
// scripts need every key in one slot), shards (tagged by construction), a
// layout that does not exist.
func TestPlainRefusals(t *testing.T) {
	ds := newStore(t, Options{})
	sharded := plainQueueDecl(ds)
	sharded.Shards = 2
	if err := NewQueue[int](ds, sharded, "a", "b").Push(bg, 1); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "shards") {
		t.Errorf("Push on a sharded plain queue = %v; want ErrInvalidArgument", err)
	}
	if err := NewReliableQueue[int](ds, plainQueueDecl(ds), "a", "b").Push(bg, 1); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "hash tag") {
		t.Errorf("Push on an at-least-once plain queue = %v; want ErrInvalidArgument", err)
	}
	bad := plainQueueDecl(ds)
	bad.Layout = 7
	if err := NewQueue[int](ds, bad, "a", "b").Push(bg, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Push with layout 7 = %v; want ErrInvalidArgument", err)
	}
	badCache := plainCacheDecl(ds)
	badCache.Layout = -1
	if err := NewCache[int](ds, badCache, "a").Set(bg, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Set with layout -1 = %v; want ErrInvalidArgument", err)
	}
	if keys, err := redistest.Keys(bg, rawClient(t), ds.prefix+"*"); err != nil || len(keys) != 0 {
		t.Errorf("keys after refused calls: %q, %v", keys, err)
	}
}
