package keyspace

import (
	"math/rand/v2"
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
// non-empty hash tag, the queue's expanded name, and so one slot.
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
		q := QueueKey("flow:", name)
		keys := append([]string{q, DeadKey(q)}, ReliableKeys(q)...)
		keys = append(keys, MarkerKey(q, randString(1+rng.IntN(20))), ReceiptKey(q, randString(26)))
		for _, k := range keys {
			if tag := HashTag(k); tag != name || tag == "" {
				t.Fatalf("key %q of queue %q (args %q) hashes %q; want the queue's name %q", k, q, args, tag, name)
			}
			if Slot(k) != Slot(q) {
				t.Fatalf("key %q is in slot %d, its queue %q in %d", k, Slot(k), q, Slot(q))
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
