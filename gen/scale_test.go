package gen

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// scaleSchema is an ordinary schema of n declarations: n/4 types of 5
// fields, and n/2 queues and n/4 caches whose keys begin with their own
// word (shape "word:"), or all begin and end with placeholders (shapes
// "open", "open_" and "crossed", whose separators come in two orders),
// which the literal ends of the key comparison cannot tell apart; their
// separators can (keyspace.Overlap).
func scaleSchema(n int, shape string) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nprefix: \"flow:\"\ntypes:\n")
	for i := range n / 4 {
		fmt.Fprintf(&b, "  T%d:\n    doc: Type %d.\n    fields:\n      run_id: string\n      n: int64\n      tags: \"[]string\"\n      at: time.Time\n      data: {type: \"map[string]any\", optional: true}\n", i, i)
	}
	key := func(kind string, i int) string {
		switch shape {
		case "open":
			return fmt.Sprintf("{a}:%s%d:{b}", kind, i)
		case "open_":
			return fmt.Sprintf("{a}_%s%d:{b}", kind, i)
		case "crossed":
			if i%2 == 0 {
				return fmt.Sprintf("{a}_%s%d:{b}", kind, i)
			}
			return fmt.Sprintf("{a}:%s%d_{b}", kind, i)
		}
		return fmt.Sprintf("%s%d:{a}:{b:int}", kind, i)
	}
	// Shape "plain": every other declaration has layout: plain, and is
	// compared by its whole keys (keyspace.OverlapKeys).
	layout := func(i int) string {
		if shape == "plain" && i%2 == 0 {
			return ", layout: plain"
		}
		return ""
	}
	b.WriteString("queues:\n")
	for i := range n / 2 {
		fmt.Fprintf(&b, "  q%d: {key: %q, payload: T%d, doc: Queue %d.%s}\n", i, key("q", i), i%(n/4), i, layout(i))
	}
	b.WriteString("caches:\n")
	for i := range n / 4 {
		fmt.Fprintf(&b, "  c%d: {key: %q, payload: T%d, ttl: 1h, doc: Cache %d.%s}\n", i, key("c", i), i, i, layout(i))
	}
	return []byte(b.String())
}

// 2,000 declarations stay well within the limits, and take little time,
// even when no key can be told apart from another by its literal ends.
func TestTwoThousandDeclarations(t *testing.T) {
	for _, shape := range []string{"word:", "open", "open_", "crossed", "plain"} {
		src := scaleSchema(2000, shape)
		start := time.Now()
		m, err := Load("schema.yaml", src, CheckOptions{DefaultPackage: "out"})
		if err != nil {
			t.Fatal(err)
		}
		checked := time.Since(start)
		files, err := Generate(m)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, f := range files {
			size += len(f)
		}
		t.Logf("keys %s: %d bytes of schema, %d queues, %d caches, %d types: checked in %v, generated %d bytes in %v",
			shape, len(src), len(m.Queues), len(m.Caches), len(m.Types), checked.Round(time.Millisecond), size, (time.Since(start) - checked).Round(time.Millisecond))
		if len(src) > MaxSchemaBytes/2 || len(m.Queues)+len(m.Caches) > MaxEntries/2 || len(m.Types) > MaxTypes/2 {
			t.Errorf("2,000 declarations use more than half of a limit")
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %v", d)
		}
	}
}

// TestKeySearchBudget: when comparing the keys takes more search steps
// than the limit, the entry where it ran out gets a positioned error that
// names the limit, and the check stops comparing.
func TestKeySearchBudget(t *testing.T) {
	defer func(n int) { keySearchSteps = n }(keySearchSteps)
	keySearchSteps = 3
	src := `version: 1
types:
  T: {fields: {a: string}}
caches:
  one: {key: "{a}_{b}", payload: T, ttl: 1h}
  two: {key: "{a}/{b}", payload: T, ttl: 1h}
`
	want := []string{`schema.yaml:6:14: cache "two": proving that its keys differ from those of the 1 entries before it took over 3 search steps, the limit; key patterns this alike cannot be compared in reasonable time, so give each a distinct literal word before its first placeholder`}
	if diff := cmp.Diff(want, loadErrors(t, src)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// TestPlainAmbiguitySearchBudget: plain-ambiguous searches each plain
// declaration's keys against themselves, and a plain pattern with long
// repeated literal text (k0:{a}xxx…, unambiguous) takes some 54,000 steps;
// a schema of thousands of them once kept storagegen lint busy for
// minutes. The searches share one budget over the schema (MaxKeySearchSteps,
// as the checker's comparisons do): 200 such caches spend it, and the one
// where it runs out gets a finding that says its keys and those after it
// were not searched, instead of silence; none after it gets one.
func TestPlainAmbiguitySearchBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nprefix: \"flow:\"\ncaches:\n")
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, "  c%d: {key: \"k%d:{a}%s\", payload: x.com/y.T, ttl: 1h, doc: d, layout: plain}\n", i, i, strings.Repeat("x", 230))
	}
	m := mustLoad(t, b.String())
	var got []Finding
	for _, f := range Lint(m, nil) {
		if f.Rule == "plain-ambiguous" {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("plain-ambiguous findings: %+v; want one, where the search budget ran out", got)
	}
	if f := got[0]; !strings.Contains(f.Message, "was not decided") || !strings.Contains(f.Message, "after it were not searched") || f.Pos.Line < 4+n/2 {
		t.Errorf("finding %+v; want the budget's, well into the schema", f)
	}
	// Ignoring the rule on that entry moves the finding on to the next.
	line := got[0].Pos.Line
	lines := strings.Split(b.String(), "\n")
	lines[line-1] = strings.Replace(lines[line-1], "layout: plain", "layout: plain, lint_ignore: [plain-ambiguous]", 1)
	for _, f := range Lint(mustLoad(t, strings.Join(lines, "\n")), nil) {
		if f.Rule == "plain-ambiguous" && f.Pos.Line != line+1 {
			t.Errorf("with the rule ignored at line %d: %+v; want the finding at the next line", line, f)
		}
	}
}
