package keyspace

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestSlotMatchesRedis checks Slot against the slots Redis Cluster gives
// (the vectors of go-redis's own hash-slot tests), hash tags included.
func TestSlotMatchesRedis(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":  12739, // the CRC-16/XMODEM check value 0x31C3
		"{}foo":      9500,  // an empty first tag: the whole key
		"foo{}":      5542,
		"foo{}{bar}": 8363,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d; want %d", key, got, want)
		}
	}
	for one, two := range map[string]string{
		"foo{bar}":      "bar",
		"{foo}bar":      "foo",
		"foo{{bar}}zap": "{bar",
		"foo{bar}{zap}": "bar",
	} {
		if HashTag(one) != two || Slot(one) != Slot(two) {
			t.Errorf("HashTag(%q) = %q, slot %d; want %q, slot %d", one, HashTag(one), Slot(one), two, Slot(two))
		}
	}
}

// TestQueueKeysShareASlot: for any accepted arguments (and any name the
// untyped QueueStore accepts), every key of a queue
// (the at-most-once queue and its dead letters; every key of an
// at-least-once queue, its dedupe markers and its receipts) has one
// non-empty hash tag, the queue's expanded name, and so one slot; and so
// has every key of each shard of a sharded queue, with a tag of its own
// (the name and "#<shard>", the name alone for shard 0).
func TestQueueKeysShareASlot(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Bytes a hostile argument may hold, braces and escapes included.
	alphabet := []byte("ab{}%:_-./ \\*?[]\x00\xff\xe9")
	randString := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	patterns := []*Pattern{
		mustPattern(t, "jobs"),
		mustPattern(t, "queue_{source}_{target}"),
		mustPattern(t, "{flow}:{node}:{attempt:int}"),
		mustPattern(t, "edge:{a}"),
	}
	untyped := 0
	for i := range 20_000 {
		p := patterns[i%len(patterns)]
		var args []any
		for _, ph := range p.Placeholders() {
			if ph.Type == Int {
				args = append(args, rng.IntN(1<<20)-1<<19)
			} else {
				args = append(args, randString(1+rng.IntN(12)))
			}
		}
		name, err := p.Expand(args...)
		if err != nil {
			t.Fatalf("Expand(%q): %v", args, err)
		}
		if i%2 == 1 { // a name of the untyped QueueStore instead, as given
			if n := randString(1 + rng.IntN(12)); CheckName(n) == nil {
				name = n
				untyped++
			}
		}
		// Every shard of the queue (shard 0 is the queue's own key):
		// every key of one shard hashes the shard's tag, and no two
		// shards share a tag.
		shards := []int{0, 1 + rng.IntN(MaxShards-1), MaxShards - 1}
		if QueueKey("flow:", name) != ShardKey("flow:", name, 0) {
			t.Fatalf("shard 0 of %q is %q, not the queue's key", name, ShardKey("flow:", name, 0))
		}
		tags := map[string]int{}
		for _, s := range shards {
			q := ShardKey("flow:", name, s)
			want := name
			if s > 0 {
				want = name + "#" + strconv.Itoa(s)
			}
			if prev, dup := tags[want]; dup && prev != s {
				t.Fatalf("shards %d and %d of %q share the tag %q", prev, s, name, want)
			}
			tags[want] = s
			keys := append([]string{q, DeadKey(q)}, ReliableKeys(q)...)
			keys = append(keys, MarkerKey(q, randString(1+rng.IntN(20))), ReceiptKey(q, randString(26)))
			for _, k := range keys {
				if tag := HashTag(k); tag != want || tag == "" {
					t.Fatalf("key %q of shard %d of queue %q (args %q) hashes %q; want %q", k, s, q, args, tag, want)
				}
				if Slot(k) != Slot(q) {
					t.Fatalf("key %q is in slot %d, its shard %q in %d", k, Slot(k), q, Slot(q))
				}
			}
		}
	}
	if untyped < 100 {
		t.Errorf("only %d untyped names were tried", untyped)
	}
}

func mustPattern(t *testing.T, s string) *Pattern {
	t.Helper()
	p, err := ParsePattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShardKeys: shard 0 is the queue's key; the others have their own
// tag and never equal the key of any queue (sharded or not) of another
// name; ShardOf is a stable function of the ID.
func TestShardKeys(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ShardKey("flow:", "jobs", 0), "flow:queue:{jobs}"},
		{ShardKey("flow:", "jobs", 3), "flow:queue:3:{jobs#3}"},
		{ShardKey("", "a#1", 2), "queue:2:{a#1#2}"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// A name holding '#' and digits cannot make one queue's shard key
	// another's: the shard number before the tag and the one after '#'
	// must agree.
	names := []string{"jobs", "jobs#1", "jobs#1#2", "1", "jobs#", "#"}
	seen := map[string]string{}
	for _, name := range names {
		for i := range 4 {
			k := ShardKey("p:", name, i)
			if prev, dup := seen[k]; dup {
				t.Errorf("key %q is both %s and %q shard %d", k, prev, name, i)
			}
			seen[k] = strconv.Quote(name) + " shard " + strconv.Itoa(i)
		}
	}
	if got := ShardKeys("p:", "q", 3); len(got) != 3 || got[0] != QueueKey("p:", "q") || got[2] != "p:queue:2:{q#2}" {
		t.Errorf("ShardKeys = %q", got)
	}
	// Fixed values: the shard of an ID is part of the key layout.
	for _, tc := range []struct {
		id   string
		n    int
		want int
	}{{"job-42", 1, 0}, {"job-42", 4, int(fnv32a("job-42") % 4)}, {"", 1024, int(fnv32a("") % 1024)}} {
		if got := ShardOf(tc.id, tc.n); got != tc.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
	if ShardOf("job-42", 4) != 1 || ShardOf("a", 2) != 0 {
		t.Errorf("ShardOf changed: job-42 of 4 is %d (was 1), a of 2 is %d (was 0)", ShardOf("job-42", 4), ShardOf("a", 2))
	}
}

// fnv32a is FNV-1a, 32 bits, written out.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
