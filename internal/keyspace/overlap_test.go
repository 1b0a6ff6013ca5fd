package keyspace

import (
	"math/rand/v2"
	"testing"
)

// TestOverlapCases checks Overlap on pairs whose answer is known, and that
// each example it gives parses back under both patterns.
func TestOverlapCases(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"{id}", "settings:{name}", true},
		{"a:{id}", "b:{id}", false},
		{"{a}", "{b}", true},
		{"x", "x", true},
		{"x", "y", false},
		{"run:{id:int}", "run:{id}", true},
		{"run:{id:int}", "run:x{id}", false},
		{"queue_{s}_{t}", "queue_{x}", false},
		{"q:{a}:{b}", "q:{c}", false},
		{"q:{a}:{b}", "q:{c}:{d}:{e}", false},
		{"{a}_output", "{b}", true},
		{"{a}_output", "{b}:x", false},
		{"n{a:int}", "n-{b:int}", true},
		{"n{a:int}", "n{b}", true},
		// Escaping decides: in k:{a} a ':' in a value is escaped, so no
		// name of it has a raw ":x" after "k:".
		{"k:{a}", "k:{b}:x", false},
		{"a_{x}", "{y}", true},
		{"a_{x}", "{y}_b", true},
		{"q:{a}", "q:{b:int}", true},
		{"q:{a:int}", "q:{b:int}:x", false},
		{"settings", "{name}", true},
		// A separator both escape cuts names into pieces that must agree.
		{"{a}:q5:{b}", "{a}:q7:{b}", false},
		{"{a}:q5:{b}", "{a}:q{n:int}:{b}", true},
		{"{a}:q5:{b}", "{a}:{c}:{b}", true},
		{"{a}:q5:{b}", "{a}:q5", false},
		{"{a}_q5:{b}", "{a}_q7:{b}", false},
		{"{a}_q5:{b}", "{c}:{b}", true},
		{"x{a}y:{b}", "x{a}z:{b}", false},
		{"{a}_k:{b}", "{a}:k_{b}", false},
		{"{a}_k:{b}", "{a}_{c}:{b}", true},
		{"{a}:x", "{a}_x", false},
		{"{a}:x:{b}", "{c}_{d}:x:{e}", true},
		{"attempt:{run_id}:{attempt:int}", "attempt:{run_id}", false},
	} {
		pa, pb := MustParsePattern(c.a), MustParsePattern(c.b)
		ex, ok := Overlap(pa, pb)
		if ok != c.want {
			t.Errorf("Overlap(%q, %q) = %q, %v; want %v", c.a, c.b, ex, ok, c.want)
			continue
		}
		if ok {
			if _, err := pa.Parse(ex); err != nil {
				t.Errorf("%q: example %q: %v", c.a, ex, err)
			}
			if _, err := pb.Parse(ex); err != nil {
				t.Errorf("%q: example %q: %v", c.b, ex, err)
			}
		}
		if back, _ := Overlap(pb, pa); (back != "") != ok {
			t.Errorf("Overlap(%q, %q) is not symmetric", c.b, c.a)
		}
	}
}

// Random patterns over a small alphabet, and random arguments: whenever two
// patterns give one name, Overlap must say so; whenever it says so, both
// must parse its example.
func TestOverlapRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lits := []string{"", "a", "b", ":", "_", "a:", ":b", "-", "ab"}
	gen := func() *Pattern {
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
			if p, err := ParsePattern(s); err == nil {
				return p
			}
		}
	}
	vals := []string{"a", "b", ":", "_", "a:b", "a_b", "-", "0", "1", "-1", "%", "ab"}
	expand := func(p *Pattern) string {
		args := make([]any, len(p.placeholders))
		for i, ph := range p.placeholders {
			if ph.Type == Int {
				args[i] = r.IntN(21) - 10
			} else {
				v := ""
				for k := 1 + r.IntN(3); k > 0; k-- {
					v += vals[r.IntN(len(vals))]
				}
				args[i] = v
			}
		}
		s, err := p.Expand(args...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	found := 0
	for i := 0; i < 3000; i++ {
		a, b := gen(), gen()
		ex, ok := Overlap(a, b)
		if ok {
			found++
			if _, err := a.Parse(ex); err != nil {
				t.Fatalf("%q/%q: example %q: %v", a, b, ex, err)
			}
			if _, err := b.Parse(ex); err != nil {
				t.Fatalf("%q/%q: example %q: %v", a, b, ex, err)
			}
			continue
		}
		names := map[string]bool{}
		for k := 0; k < 300; k++ {
			names[expand(a)] = true
		}
		for k := 0; k < 300; k++ {
			if n := expand(b); names[n] {
				t.Fatalf("%q and %q both give %q; Overlap said no", a, b, n)
			}
		}
	}
	t.Logf("%d of 3000 pairs overlap", found)
}
