package keyspace

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		args    []any
		want    string
	}{
		{"queue_{source_id}_{target_id}", []any{"node_5", "node_8"}, "queue_node%5F5_node%5F8"},
		{"queue_{source_id}_{target_id}", []any{"a_b", "c"}, "queue_a%5Fb_c"},
		{"queue_{source_id}_{target_id}", []any{"a", "b_c"}, "queue_a_b%5Fc"},
		{"edge:{a}:{b}", []any{"node-5.v2", "x"}, "edge:node-5.v2:x"},
		{"edge:{a}:{b}", []any{"a:b", "50%"}, "edge:a%3Ab:50%25"},
		{"k:{a}", []any{"{x}*?[y]\\\n"}, "k:%7Bx%7D%2A%3F%5By%5D%5C%0A"},
		{"k:{a}", []any{"héllo wörld"}, "k:héllo wörld"},
		{"attempt:{run_id}:{attempt:int}", []any{"run-1", -3}, "attempt:run-1:-3"},
		{"jobs", nil, "jobs"},
	} {
		p := MustParsePattern(tc.pattern)
		got, err := p.Expand(tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("%s.Expand(%q) = %q, %v; want %q", tc.pattern, tc.args, got, err, tc.want)
			continue
		}
		back, err := p.Parse(got)
		if err != nil {
			t.Errorf("Parse(%q) = %v", got, err)
		} else if !sameArgs(back, tc.args) {
			t.Errorf("Parse(%q) = %q, want %q", got, back, tc.args)
		}
	}
}

func TestParsePatternErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"", `key pattern "" is empty`},
		{"{node_id_output", `key pattern "{node_id_output" has unclosed "{" at offset 0`},
		{"a{}b", `key pattern "a{}b" has an empty placeholder "{}" at offset 1`},
		{"{a}:{a}", `key pattern "{a}:{a}" uses placeholder {a} twice`},
		{"{a:float}", `key pattern "{a:float}" has placeholder {a:float} with unknown type "float" (want string or int)`},
		{"{a}{b}", `key pattern "{a}{b}" has placeholders {a} and {b} with no literal text between them`},
		{"{a}x-{b}", `key pattern "{a}x-{b}" separates {a} and {b} only by "x-"; values may contain letters, digits, '-' and '.', so put a separator such as ':' between them`},
		{"a}b", `key pattern "a}b" has "}" without a matching "{" at offset 1`},
		{"a*b", `key pattern "a*b" has '*' at offset 1; literal text may not contain spaces, % * ? [ ] \ or control bytes`},
		{"a<b>:{c}", `key pattern "a<b>:{c}" has '<' at offset 1; literal text may not contain < or >, which the documentation uses to show placeholders (<name>)` + "\n" +
			`key pattern "a<b>:{c}" has '>' at offset 3; literal text may not contain < or >, which the documentation uses to show placeholders (<name>)`},
	} {
		_, err := ParsePattern(tc.pattern)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParsePattern(%q) = %v\nwant %s", tc.pattern, err, tc.want)
		}
	}
}

func TestParseRejectsForeignNames(t *testing.T) {
	// A pattern without placeholders has one name. (The fuzz target
	// found that "zaa" parsed under "z".)
	if _, err := MustParsePattern("z").Parse("zaa"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf(`"z".Parse("zaa") = %v; want an error`, err)
	}
	p := MustParsePattern("queue_{a}_{b}")
	for _, name := range []string{"queue_a", "x_a_b", "queue_a_b_c", "queue__b", "queue_a%5_b", "queue_a%41_b", "queue_a*_b"} {
		if _, err := p.Parse(name); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Parse(%q) = %v; want an error", name, err)
		}
	}
}

// TestKeysAreInjective checks the promise of escaping: random argument
// tuples never give the same key, and every key parses back into its
// arguments.
func TestKeysAreInjective(t *testing.T) {
	patterns := []string{"queue_{a}_{b}", "{a}:{b}", "x{a}y:{b}z", "{a}_output", "p:{a}:{n:int}:{b}", "{a}/{b}"}
	alphabet := []byte("ab_:.-%{}*?[]\\\x00 xyé/")
	rng := rand.New(rand.NewPCG(1, 2))
	randString := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for _, pat := range patterns {
		p, err := ParsePattern(pat)
		if err != nil {
			t.Fatalf("%s: %v", pat, err)
		}
		seen := map[string][]any{}
		for range 20000 {
			var args []any
			for _, ph := range p.Placeholders() {
				if ph.Type == Int {
					args = append(args, rng.IntN(200)-100)
				} else {
					args = append(args, randString())
				}
			}
			key, err := p.Expand(args...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(key, "{}*?[]\\\x00") {
				t.Fatalf("%s: key %q has a raw special byte", pat, key)
			}
			if prev, ok := seen[key]; ok && !cmp.Equal(prev, args) {
				t.Fatalf("%s: %q and %q both give %q", pat, prev, args, key)
			}
			seen[key] = args
			back, err := p.Parse(key)
			if err != nil || !cmp.Equal(back, args) {
				t.Fatalf("%s: Parse(%q) = %q, %v; want %q", pat, key, back, err, args)
			}
		}
	}
}

func FuzzKeyPattern(f *testing.F) {
	f.Add("queue_{source_id}_{target_id}", "a_b", "c")
	f.Add("{a}:{b:int}", "x", "7")
	f.Add("{a}/{b}", "%", "}")
	f.Fuzz(func(t *testing.T, pattern, a, b string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		var args []any
		for i, ph := range p.Placeholders() {
			v := a
			if i%2 == 1 {
				v = b
			}
			if ph.Type == Int {
				args = append(args, len(v)-3)
			} else {
				args = append(args, v)
			}
		}
		key, err := p.Expand(args...)
		if err != nil {
			return // an empty value
		}
		back, err := p.Parse(key)
		if err != nil || !sameArgs(back, args) {
			t.Fatalf("%q: Parse(Expand(%q)) = %q, %v", pattern, args, back, err)
		}
	})
}

func sameArgs(a, b []any) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) }
