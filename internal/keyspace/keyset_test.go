package keyspace

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// keysOf returns every key (after the prefix) that k gives for args, with
// the part of each as Example.Part names it; a marker and a receipt with
// the ID "m".
func keysOf(t testing.TB, k KeySet, args []any) map[string]string {
	t.Helper()
	name, err := k.Pattern.ExpandLayout(k.Layout, args...)
	if err != nil {
		t.Fatalf("%q %v: %v", k.Pattern, args, err)
	}
	if !k.Queue {
		return map[string]string{CacheKey("", name): ""}
	}
	lists := map[string]string{QueueKeyOf(k.Layout, "", name): ""}
	for i := 1; i < k.Shards; i++ {
		lists[ShardKey("", name, i)] = "shard " + strconv.Itoa(i)
	}
	out := map[string]string{}
	for q, shard := range lists {
		join := func(part string) string {
			if shard == "" {
				return part
			}
			if part == "" {
				return shard
			}
			return shard + " " + part
		}
		out[q] = join("")
		names, suffixes := k.parts()
		for i, s := range suffixes {
			key := q + s
			switch s {
			case markerInfix:
				key = MarkerKey(q, "m")
			case receiptInfix:
				key = ReceiptKey(q, "m")
			}
			out[key] = join(names[i])
		}
	}
	return out
}

// checkExample fails unless ex gives key through k.
func checkExample(t *testing.T, k KeySet, key string, ex Example) {
	t.Helper()
	keys := keysOf(t, k, ex.Args)
	part, ok := keys[key]
	if !ok && (strings.Contains(ex.Part, "marker") || strings.Contains(ex.Part, "receipt")) {
		return // any ID: keysOf tries only "m"
	}
	if !ok || part != ex.Part {
		t.Errorf("%q (%v): example %v part %q does not give %q: %v", k.Pattern, k.Layout, ex.Args, ex.Part, key, keys)
	}
}

func TestOverlapKeysCases(t *testing.T) {
	q := func(pattern string, l Layout) KeySet {
		return KeySet{Queue: true, Pattern: MustParsePattern(pattern), Layout: l}
	}
	c := func(pattern string, l Layout) KeySet { return KeySet{Pattern: MustParsePattern(pattern), Layout: l} }
	rel := func(k KeySet) KeySet { k.Reliable = true; return k }
	sharded := func(k KeySet, n int) KeySet { k.Shards = n; return k }
	for _, tc := range []struct {
		a, b KeySet
		want string // the key; "" for none
	}{
		// A plain pattern that begins with a placeholder reaches every
		// tagged queue's keys: values may hold braces.
		{q("{x}", Plain), q("jobs", Tagged), "queue:{jobs}"},
		{q("{x}", Plain), rel(q("jobs", Tagged)), "queue:{jobs}"},
		{q("{x}:ready", Plain), rel(q("jobs", Tagged)), "queue:{jobs}:id:ready"}, // a marker of the ID "ready"
		{q("{x}:ready", Plain), q("jobs", Tagged), ""},
		{q("{x}:leases", Plain), rel(q("jobs", Tagged)), "queue:{jobs}:leases"},
		{q("{x}", Plain), q("a_{id}", Tagged), "queue:{a_a}"},
		{q("1:{x}", Plain), sharded(q("jobs", Tagged), 4), "queue:1:{jobs#1}"},
		{q("1:{x}", Plain), q("jobs", Tagged), ""},
		// Only the shards a queue has: shard 7 of 8, none of 2 or 4 (the
		// search once took any number, and gave queue:7:{jobs#1}).
		{q("7:{x}", Plain), sharded(q("jobs", Tagged), 8), "queue:7:{jobs#7}"},
		{q("7:{x}", Plain), sharded(q("jobs", Tagged), 4), ""},
		{q("7:{x}", Plain), sharded(rel(q("jobs", Tagged)), 2), ""},
		{q("10:{x}", Plain), sharded(q("jobs", Tagged), 11), "queue:10:{jobs#10}"},
		{q("10:{x}", Plain), sharded(q("jobs", Tagged), 10), ""},
		{q("1023:{x}", Plain), sharded(q("jobs", Tagged), 1024), "queue:1023:{jobs#1023}"},
		{q("queue_{s}_{t}", Plain), rel(q("jobs", Tagged)), ""},
		{q("queue_{s}_{t}", Plain), q("queue_{s}_{t}", Tagged), ""},
		// Plain queues: each other's lists and dead letters.
		{q("q_{a}", Plain), q("q_{a}:dead", Plain), "queue:q_a:dead"},
		{q("q_{a}", Plain), q("r_{a}", Plain), ""},
		{q("q_{a}_x", Plain), q("q_{b:int}", Plain), ""},
		{q("q_{a}", Plain), q("q_{b:int}", Plain), "queue:q_0"},
		{q("{a}_q", Plain), q("{a}_r", Plain), ""},
		{q("{a}:q", Plain), q("{b}", Tagged), ""}, // tagged keys end with } or a part
		// Caches.
		{c("{n}_output", Plain), c("{name}:settings", Tagged), ""},
		{c("{n}_output", Plain), c("attempt:{run}:{n:int}", Tagged), ""},
		{c("{n}_output", Plain), c("{name}", Tagged), "cache:a_output"},
		{c("{a}", Plain), c("x", Tagged), "cache:x"},
		{c("a.{b}", Tagged), c("a{a}", Plain), "cache:a.a"},
		{c("k:{a}", Plain), c("k:{b}:x", Tagged), "cache:k:a:x"},
		{c("k:{a}", Tagged), c("k:{b}:x", Tagged), ""},
		// A queue and a cache never share a key.
		{q("{a}", Plain), c("{a}", Plain), ""},
	} {
		for _, swap := range []bool{false, true} {
			a, b := tc.a, tc.b
			if swap {
				a, b = b, a
			}
			m, _ := OverlapKeys(a, b, -1)
			got := ""
			if m != nil {
				got = m.Key
			}
			if got != tc.want {
				t.Errorf("OverlapKeys(%q %v, %q %v) = %q; want %q", a.Pattern, a.Layout, b.Pattern, b.Layout, got, tc.want)
				continue
			}
			if m != nil {
				checkExample(t, a, m.Key, m.A)
				checkExample(t, b, m.Key, m.B)
			}
		}
	}
}

func TestAmbiguousCases(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		queue   bool
		want    string
	}{
		{"queue_{source_id}_{target_id}", true, "queue:queue_a__a"}, // ("a_", "a") and ("a", "_a")
		{"queue_{source_id}_{target_id}", false, "cache:queue_a__a"},
		{"{node_id}_output", false, ""},
		{"{node_id}_output", true, ""},
		{"jobs_{id}", true, "queue:jobs_a:dead"}, // ("a:dead") and ("a")'s dead letters
		{"jobs_{id}", false, ""},
		{"run:{n:int}:{id}", false, ""},
		{"run:{id}:{n:int}", false, ""},
		{"{a}:{b}", false, "cache:a::a"},
		{"jobs", true, ""},
	} {
		k := KeySet{Queue: tc.queue, Pattern: MustParsePattern(tc.pattern), Layout: Plain}
		m, _ := Ambiguous(k, -1)
		got := ""
		if m != nil {
			got = m.Key
		}
		if got != tc.want {
			t.Errorf("Ambiguous(%q, queue %v) = %q; want %q", tc.pattern, tc.queue, got, tc.want)
			continue
		}
		if m != nil {
			checkExample(t, k, m.Key, m.A)
			checkExample(t, k, m.Key, m.B)
			if slices.Equal(m.A.Args, m.B.Args) {
				t.Errorf("%q: both examples are %v", tc.pattern, m.A.Args)
			}
		}
		k.Layout = Tagged
		if m, _ := Ambiguous(k, -1); m != nil {
			t.Errorf("tagged %q is ambiguous: %+v", tc.pattern, m)
		}
	}
}

// Random declarations of both layouts and kinds, with random arguments:
// whenever two give one key, OverlapKeys must say so (and Ambiguous, for
// two tuples of one); whenever it says so, its examples must give the key.
func TestOverlapKeysRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lits := []string{"", "a", ":", "_", "a:", ":b", "1:", "-", "ab", ":dead"}
	vals := []string{"a", ":", "_", "a:b", "{a}", "}", "{", "1", "#1", ":dead", "%", "%7B", "b_a"}
	gen := func() KeySet {
		for {
			var s string
			n := r.IntN(3)
			for i := 0; i < n; i++ {
				s += lits[r.IntN(len(lits))]
				if r.IntN(4) == 0 {
					s += "{p" + string(rune('a'+i)) + ":int}"
				} else {
					s += "{p" + string(rune('a'+i)) + "}"
				}
			}
			s += lits[r.IntN(len(lits))]
			p, err := ParsePattern(s)
			if err != nil {
				continue
			}
			k := KeySet{Queue: r.IntN(3) > 0, Pattern: p, Layout: Layout(r.IntN(2))}
			if k.Queue && k.Layout == Tagged {
				k.Reliable = r.IntN(3) == 0
				if r.IntN(3) == 0 {
					k.Shards = 3
				}
			}
			return k
		}
	}
	args := func(k KeySet) []any {
		out := make([]any, len(k.Pattern.placeholders))
		for i, ph := range k.Pattern.placeholders {
			if ph.Type == Int {
				out[i] = r.IntN(5) - 1
				continue
			}
			v := ""
			for n := 1 + r.IntN(3); n > 0; n-- {
				v += vals[r.IntN(len(vals))]
			}
			out[i] = v
		}
		return out
	}
	found, ambiguous := 0, 0
	for i := 0; i < 1500; i++ {
		a, b := gen(), gen()
		if m, _ := OverlapKeys(a, b, -1); m != nil {
			found++
			checkExample(t, a, m.Key, m.A)
			checkExample(t, b, m.Key, m.B)
		} else {
			seen := map[string][]any{}
			for n := 0; n < 200; n++ {
				as := args(a)
				for key := range keysOf(t, a, as) {
					seen[key] = as
				}
			}
			for n := 0; n < 200; n++ {
				bs := args(b)
				for key := range keysOf(t, b, bs) {
					if as, ok := seen[key]; ok {
						t.Fatalf("%q %v %v and %q %v %v both give %q; OverlapKeys said no", a.Pattern, a.Layout, as, b.Pattern, b.Layout, bs, key)
					}
				}
			}
		}
		if m, _ := Ambiguous(a, -1); m != nil {
			ambiguous++
			if a.Layout == Tagged {
				t.Fatalf("tagged %q is ambiguous: %+v", a.Pattern, m)
			}
			checkExample(t, a, m.Key, m.A)
			checkExample(t, a, m.Key, m.B)
		} else {
			seen := map[string]string{}
			for n := 0; n < 200; n++ {
				as := args(a)
				id := fmtArgs(as)
				for key := range keysOf(t, a, as) {
					if prev, ok := seen[key]; ok && prev != id {
						t.Fatalf("%q %v: %s and %s both give %q; Ambiguous said no", a.Pattern, a.Layout, prev, id, key)
					}
					seen[key] = id
				}
			}
		}
	}
	t.Logf("%d of 1500 pairs overlap; %d declarations are ambiguous", found, ambiguous)
}

func fmtArgs(args []any) string {
	var b strings.Builder
	for _, a := range args {
		switch v := a.(type) {
		case string:
			b.WriteString(strconv.Quote(v))
		case int:
			b.WriteString(strconv.Itoa(v))
		}
		b.WriteByte(',')
	}
	return b.String()
}

// A queue with many shards and a long pattern gets one copy of its
// expansion between two shard numbers (exactShardStates): still only the
// numbers of its shards, and never fewer keys than it has.
func TestOverlapKeysManyShards(t *testing.T) {
	long := KeySet{Queue: true, Pattern: MustParsePattern("jobs_{a}_{b}_with_a_long_literal_word"), Shards: 1024}
	for _, tc := range []struct {
		plain string
		want  bool
	}{{"1023:{x}", true}, {"1:{x}", true}, {"1024:{x}", false}, {"2000:{x}", false}, {"0:{x}", false}} {
		k := KeySet{Queue: true, Pattern: MustParsePattern(tc.plain), Layout: Plain}
		m, _ := OverlapKeys(k, long, -1)
		if (m != nil) != tc.want {
			t.Errorf("OverlapKeys(%q plain, 1024 shards) = %+v; want a key: %v", tc.plain, m, tc.want)
		}
		if m != nil && !strings.HasPrefix(m.Key, "queue:"+strings.TrimSuffix(tc.plain, "{x}")+"{") {
			t.Errorf("OverlapKeys(%q plain, 1024 shards) = %q", tc.plain, m.Key)
		}
	}
}
