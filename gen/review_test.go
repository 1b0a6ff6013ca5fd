package gen

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// reviewBase is the old schema of the Diff table; each case edits it.
const reviewBase = `version: 1
package: out
prefix: "flow:"
types:
  T:
    doc: A payload.
    fields:
      a: string
      b: {type: int, optional: true}
  U: {fields: {x: string}}
queues:
  q: {key: "q:{id}", payload: T, doc: d}
  r: {payload: T, delivery: at-least-once}
caches:
  c: {key: "c:{n:int}", payload: T, ttl: 1h}
`

func mustLoad(t *testing.T, src string) *Model {
	t.Helper()
	m, err := Load("schema.yaml", []byte(src), CheckOptions{DefaultPackage: "out"})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return m
}

// edit applies old→new replacements to reviewBase, each of which must
// match.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := reviewBase
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("base has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// Every diff code with its severity, so that classifying a change
// differently fails here and not only in the command's golden reports.
func TestDiffCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string // "code severity"
	}{
		{"same", nil, nil},
		{"queue removed", []string{"  q: {key: \"q:{id}\", payload: T, doc: d}\n", ""}, []string{"queue-removed breaking"}},
		{"queue removed, allowed", []string{"  q: {key: \"q:{id}\", payload: T, doc: d}\n", "", "prefix: \"flow:\"\n", "prefix: \"flow:\"\nallow_breaking: \"drained\"\n"}, []string{"queue-removed allowed"}},
		{"cache removed", []string{"caches:\n  c: {key: \"c:{n:int}\", payload: T, ttl: 1h}\n", ""}, []string{"cache-removed breaking"}},
		{"queue renamed", []string{"  q: {key", "  q2: {key"}, []string{"queue-renamed safe"}},
		{"cache renamed", []string{"  c: {key", "  c2: {key"}, []string{"cache-renamed safe"}},
		{"queue added", []string{"queues:\n", "queues:\n  n: {key: \"n:{id}\", payload: T}\n"}, []string{"queue-added safe"}},
		{"cache added", []string{"caches:\n", "caches:\n  d: {key: \"d:{id}\", payload: T, ttl: 1h}\n"}, []string{"cache-added safe"}},
		{"key changed", []string{`"q:{id}"`, `"qq:{id}"`}, []string{"key-changed breaking"}},
		{"key changed, allowed", []string{`"q:{id}", payload: T, doc: d}`, `"qq:{id}", payload: T, doc: d, allow_breaking: "migrated"}`}, []string{"key-changed allowed"}},
		{"placeholder type changed", []string{`"c:{n:int}"`, `"c:{n}"`}, []string{"placeholder-type-changed breaking"}},
		{"placeholder renamed", []string{`"q:{id}"`, `"q:{key}"`}, []string{"placeholder-renamed safe"}},
		{"prefix changed", []string{`prefix: "flow:"`, `prefix: "flow2:"`}, []string{"prefix-changed breaking"}},
		{"package changed", []string{"package: out", "package: other"}, []string{"package-changed safe"}},
		{"payload changed", []string{"payload: T, doc: d", "payload: U, doc: d"}, []string{"payload-changed breaking"}},
		{"delivery changed", []string{"payload: T, doc: d}", "payload: T, doc: d, delivery: at-least-once}"}, []string{"delivery-changed breaking"}},
		{"doc changed", []string{"doc: d}", "doc: e}"}, []string{"doc-changed safe"}},
		{"type doc changed", []string{"doc: A payload.", "doc: The payload."}, []string{"doc-changed safe"}},
		{"ttl changed", []string{"ttl: 1h", "ttl: 2h"}, []string{"ttl-changed safe"}},
		{"local turned on", []string{"ttl: 1h", "ttl: 1h, local: true"}, []string{"local-changed safe"}},
		{"lease changed", []string{"delivery: at-least-once}", "delivery: at-least-once, lease: 1m}"}, []string{"lease-changed safe"}},
		{"max deliveries changed", []string{"delivery: at-least-once}", "delivery: at-least-once, max_deliveries: 2}"}, []string{"max-deliveries-changed safe"}},
		{"dedupe window changed", []string{"delivery: at-least-once}", "delivery: at-least-once, dedupe_window: 2h}"}, []string{"dedupe-window-changed safe"}},
		{"shards grown", []string{"payload: T, doc: d}", "payload: T, doc: d, shards: 4}"}, []string{"shards-changed breaking"}},
		{"shards grown, allowed", []string{"payload: T, doc: d}", "payload: T, doc: d, shards: 4, allow_breaking: \"consumers deployed first\"}"}, []string{"shards-changed allowed"}},
		{"shards 1 written out", []string{"payload: T, doc: d}", "payload: T, doc: d, shards: 1}"}, nil},
		{"type added", []string{"types:\n", "types:\n  V: {fields: {y: string}}\n"}, []string{"type-added safe"}},
		{"type removed", []string{"  U: {fields: {x: string}}\n", ""}, []string{"type-removed safe"}},
		{"field removed", []string{"      b: {type: int, optional: true}\n", ""}, []string{"field-removed breaking"}},
		{"field removed, allowed", []string{"      b: {type: int, optional: true}\n", "", "    doc: A payload.\n", "    doc: A payload.\n    allow_breaking: \"no reader uses b\"\n"}, []string{"field-removed allowed"}},
		{"field renamed", []string{"      a: string", "      a2: string"}, []string{"field-renamed breaking"}},
		{"field type changed", []string{"      a: string", "      a: int64"}, []string{"field-type-changed breaking"}},
		{"field made required", []string{"{type: int, optional: true}", "{type: int}"}, []string{"field-made-required breaking"}},
		{"field made optional", []string{"      a: string", "      a: {type: string, optional: true}"}, []string{"field-made-optional safe"}},
		{"optional field added", []string{"      a: string\n", "      a: string\n      n: {type: bool, optional: true}\n"}, []string{"field-added safe"}},
		{"required field added", []string{"      a: string\n", "      a: string\n      n: bool\n"}, []string{"required-field-added breaking"}},
		{"field doc changed", []string{"      a: string", "      a: {type: string, doc: The a.}"}, []string{"doc-changed safe"}},
		{"allow_breaking alone changes nothing", []string{"doc: d}", "doc: d, allow_breaking: \"once\"}"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := mustLoad(t, reviewBase)
			cur := mustLoad(t, edit(t, tc.edits...))
			var got []string
			for _, c := range Diff(old, cur) {
				got = append(got, c.Code+" "+c.Severity())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
	// An allowance that the old schema already had does not count.
	allowed := edit(t, `"q:{id}", payload: T, doc: d}`, `"q:{id}", payload: T, doc: d, allow_breaking: "migrated"}`)
	moved := strings.Replace(allowed, `"q:{id}"`, `"qq:{id}"`, 1)
	if got := Diff(mustLoad(t, allowed), mustLoad(t, moved)); len(got) != 1 || got[0].Severity() != "breaking" {
		t.Errorf("carried-over allow_breaking: %+v, want one breaking change", got)
	}
}

// Every lint rule, with its severity, where it fires and where it does
// not; lint_ignore and disabled rules turn it off.
func TestLintRules(t *testing.T) {
	const clean = "version: 1\nprefix: \"flow:\"\nqueues:\n  q: {key: \"q:{id}\", payload: x.com/y.T, doc: d, delivery: at-least-once}\ncaches:\n  c: {key: \"c:{id}\", payload: x.com/y.T, doc: d, ttl: 1h}\n"
	for _, tc := range []struct {
		name     string
		src      string
		disabled string
		want     []string // "rule severity line"
	}{
		{"clean", clean, "", nil},
		{"id-separator", strings.Replace(clean, `"c:{id}"`, `"c:{id}_x"`, 1), "", []string{"id-separator warning 6"}},
		{"id-separator ignored", strings.Replace(clean, `"c:{id}", payload`, `"c:{id}_x", lint_ignore: [id-separator], payload`, 1), "", nil},
		{"id-separator disabled", strings.Replace(clean, `"c:{id}"`, `"c:{id}/x"`, 1), "id-separator", nil},
		{"missing-doc", strings.Replace(clean, "doc: d, ttl", "ttl", 1), "", []string{"missing-doc warning 6"}},
		{"long-ttl", strings.Replace(clean, "ttl: 1h", "ttl: 721h", 1), "", []string{"long-ttl warning 6"}},
		{"ttl of 30 days", strings.Replace(clean, "ttl: 1h", "ttl: 720h", 1), "", nil},
		{"empty-prefix", strings.Replace(clean, "prefix: \"flow:\"\n", "", 1), "", []string{"empty-prefix warning 1"}},
		{"empty-prefix ignored at the top", strings.Replace(clean, "prefix: \"flow:\"\n", "lint_ignore: [empty-prefix]\n", 1), "", nil},
		{"long-key", strings.Replace(clean, `"c:{id}"`, `"c:{a}:{b}:{c}:{d}"`, 1), "", []string{"long-key warning 6"}},
		{"at-most-once", strings.Replace(clean, ", delivery: at-least-once", "", 1), "", []string{"at-most-once info 4"}},
		{"missing-doc: only spaces", strings.Replace(clean, "doc: d, ttl", `doc: "   ", ttl`, 1), "", []string{"missing-doc warning 6"}},
		{"id-separator not after an int", strings.Replace(clean, `"c:{id}"`, `"c:{id:int}_x"`, 1), "", nil},
		// flow:cache:c: + three UUIDs with two colons is 123 bytes.
		{"long-key: 128 bytes", strings.Replace(clean, `"c:{id}"`, `"c:{a}:{b}:{c}:abcd"`, 1), "", nil},
		{"sharded-pattern", strings.Replace(clean, "delivery: at-least-once}", "delivery: at-least-once, shards: 4}", 1), "", []string{"sharded-pattern info 4"}},
		{"sharded-pattern ignored", strings.Replace(clean, "delivery: at-least-once}", "delivery: at-least-once, shards: 4, lint_ignore: [sharded-pattern]}", 1), "", nil},
		// plain-ambiguous: two tuples, or a queue's list and another's dead
		// letters; id-separator says nothing in the plain layout, where
		// nothing is escaped.
		{"plain-ambiguous", strings.Replace(clean, `"c:{id}", payload`, `"c_{a}_{b}", layout: plain, payload`, 1), "", []string{"plain-ambiguous warning 6"}},
		{"plain-ambiguous dead letters", strings.Replace(clean, `key: "q:{id}", payload: x.com/y.T, doc: d, delivery: at-least-once`, `key: "q_{id}", payload: x.com/y.T, doc: d, layout: plain, lint_ignore: [at-most-once]`, 1), "", []string{"plain-ambiguous warning 4"}},
		{"plain-ambiguous ignored", strings.Replace(clean, `"c:{id}", payload`, `"c_{a}_{b}", layout: plain, lint_ignore: [plain-ambiguous], payload`, 1), "", nil},
		{"plain-ambiguous disabled", strings.Replace(clean, `"c:{id}", payload`, `"c_{a}_{b}", layout: plain, payload`, 1), "plain-ambiguous", nil},
		{"plain one placeholder", strings.Replace(clean, `"c:{id}", payload`, `"{id}_output", layout: plain, payload`, 1), "", nil},
		{"plain queue ending in literal text", strings.Replace(clean, `key: "q:{id}", payload: x.com/y.T, doc: d, delivery: at-least-once`, `key: "q_{id}_x", payload: x.com/y.T, doc: d, layout: plain, lint_ignore: [at-most-once]`, 1), "", nil},
		{"sharded fixed key", strings.Replace(clean, `"q:{id}"`, `"q"`, 1) + "", "", nil},
		// The last shard's key is the longest: flow:queue:{q:+three UUIDs}
		// is 125 bytes, flow:queue:1023:{…#1023} 135.
		{"long-key: 125 bytes unsharded", strings.Replace(clean, `"q:{id}"`, `"q:{a}:{b}:{c}"`, 1), "", nil},
		{"long-key of the last shard", strings.Replace(clean, `key: "q:{id}", payload: x.com/y.T, doc: d, delivery: at-least-once}`, `key: "q:{a}:{b}:{c}", payload: x.com/y.T, doc: d, delivery: at-least-once, shards: 1024, lint_ignore: [sharded-pattern]}`, 1), "", []string{"long-key warning 4"}},
		{"long-key: 129 bytes", strings.Replace(clean, `"c:{id}"`, `"c:{a}:{b}:{c}:abcde"`, 1), "", []string{"long-key warning 6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disabled := map[string]bool{}
			if tc.disabled != "" {
				disabled[tc.disabled] = true
			}
			var got []string
			for _, f := range Lint(mustLoad(t, tc.src), disabled) {
				if r := FindLintRule(f.Rule); r == nil || r.Severity != f.Severity {
					t.Errorf("finding %+v does not have its rule's severity", f)
				}
				got = append(got, f.Rule+" "+string(f.Severity)+" "+strconv.Itoa(f.Pos.Line))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
	// The severities themselves: a warning fails storagegen lint, info
	// does not.
	want := map[string]Severity{"id-separator": Warning, "plain-ambiguous": Warning, "missing-doc": Warning, "long-ttl": Warning, "empty-prefix": Warning, "long-key": Warning, "at-most-once": Info, "sharded-pattern": Info}
	for _, r := range LintRules {
		if want[r.ID] != r.Severity {
			t.Errorf("rule %s has severity %s, want %s", r.ID, r.Severity, want[r.ID])
		}
		delete(want, r.ID)
	}
	if len(want) != 0 {
		t.Errorf("rules missing: %v", want)
	}
}
