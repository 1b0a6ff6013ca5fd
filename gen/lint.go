package gen

import (
	"fmt"
	"strings"
	"time"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// Lint finds what schema review tends to miss: things that are allowed
// but likely wrong. Each rule has an ID, by which an entry's lint_ignore
// or a run's -disable turns it off.

// Severity orders findings and changes.
type Severity string

// The severities of lint findings.
const (
	Warning Severity = "warning" // storagegen lint exits 1
	Info    Severity = "info"    // reported, never fails a run
)

// LintRule is one rule of storagegen lint.
type LintRule struct {
	ID       string
	Severity Severity
	Summary  string
}

// LintRules are the rules, in the order they run.
var LintRules = []LintRule{
	{"id-separator", Warning, "a placeholder is followed by a separator that IDs often contain, which is then escaped in every value (tagged layout)"},
	{"plain-ambiguous", Warning, "two different argument tuples of a plain declaration give one key, which the plain layout cannot tell apart"},
	{"missing-doc", Warning, "a queue or cache has no doc"},
	{"long-ttl", Warning, "a cache TTL is over 30 days"},
	{"empty-prefix", Warning, "the schema has no prefix, so its keys mix with any other application's on the server"},
	{"long-key", Warning, "a key is longer than 128 bytes for typical arguments"},
	{"at-most-once", Info, "a queue is at-most-once, so a consumer that crashes loses the item it holds"},
	{"sharded-pattern", Info, "a queue whose key has placeholders is sharded, so every queue of the pattern is"},
}

// Lint limits.
const (
	maxLintTTL    = 30 * 24 * time.Hour
	maxKeyBytes   = 128
	typicalString = "0f8fad5b-d9cb-469f-a165-70867728950e" // a UUID: 36 bytes
	typicalInt    = 1_000_000_000_000                      // 13 digits
)

// idSeparators are the separators that typical IDs contain: snake_case
// names, paths and base64 (/ + =), e-mail addresses (@).
const idSeparators = "_/+=@"

// maxAmbiguitySteps bounds the search of plain-ambiguous in one
// declaration.
const maxAmbiguitySteps = 1_000_000

// ambiguitySteps bounds the searches of plain-ambiguous summed over a
// schema, as MaxKeySearchSteps bounds the checker's: one plain pattern
// with long repeated literal text takes some 65,000 steps, and a schema
// may have thousands. It is a variable so that a test can lower it.
var ambiguitySteps = MaxKeySearchSteps

// FindLintRule returns the rule with the given ID, or nil.
func FindLintRule(id string) *LintRule {
	for i := range LintRules {
		if LintRules[i].ID == id {
			return &LintRules[i]
		}
	}
	return nil
}

func lintRuleIDs() []string {
	ids := make([]string, len(LintRules))
	for i, r := range LintRules {
		ids[i] = r.ID
	}
	return ids
}

// Finding is one problem that Lint found.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Pos      Pos      `json:"-"`
	Subject  string   `json:"subject"` // `queue "jobs"`, `cache "x"`, `schema`
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
}

// Lint runs every rule not in disabled on m, skipping those an entry's
// lint_ignore names, and returns the findings in schema order.
func Lint(m *Model, disabled map[string]bool) []Finding {
	l := &linter{disabled: disabled, ambiguitySteps: ambiguitySteps}
	l.file(m)
	for _, q := range m.Queues {
		// The last shard's keys are the longest.
		keyOf := func(name string) string { return keyspace.ShardKey(m.Prefix, name, q.Shards-1) }
		if q.Layout == keyspace.Plain {
			keyOf = func(name string) string { return q.KeyOf(m.Prefix, name) }
		}
		l.entry("queue", q.Name, q.KeySet(), keyOf, q.Doc, &q.Review)
		l.plainAmbiguous("queue", q.Name, m.Prefix, q.KeySet(), &q.Review)
		if q.Shards > 1 && len(q.Key.Placeholders()) > 0 {
			l.add(&q.Review, "sharded-pattern", q.Review.PosOf("shards"), fmt.Sprintf("queue %q", q.Name),
				fmt.Sprintf("every queue of the pattern %s gets %d shards: the queues of a pattern already spread over a cluster's slots by their arguments, and each shard is a list that receivers sweep and reclaim", q.Key, q.Shards),
				"shard a hot queue with a fixed key; for a pattern, leave shards out unless one queue of it is too hot for one primary")
		}
		if q.Reliable == nil {
			l.add(&q.Review, "at-most-once", q.Review.PosOf("delivery"), fmt.Sprintf("queue %q", q.Name),
				"at-most-once: an item lives only in the consumer's memory between Pop and the end of its work, so a consumer that crashes, is killed or is deployed over loses it",
				"if losing an item matters, add delivery: at-least-once (Receive and Ack instead of Pop)")
		}
	}
	for _, c := range m.Caches {
		what := fmt.Sprintf("cache %q", c.Name)
		l.entry("cache", c.Name, c.KeySet(), func(name string) string { return keyspace.CacheKey(m.Prefix, name) }, c.Doc, &c.Review)
		l.plainAmbiguous("cache", c.Name, m.Prefix, c.KeySet(), &c.Review)
		if !c.NoExpiry && c.TTL > maxLintTTL {
			l.add(&c.Review, "long-ttl", c.Review.PosOf("ttl"), what,
				fmt.Sprintf("ttl %s is over 30 days; entries that nobody reads again stay that long", durationText(c.TTL)),
				"shorten the ttl, or write ttl: none if entries are meant to be kept until deleted")
		}
	}
	sortByPos(l.found, func(f Finding) Pos { return f.Pos })
	return l.found
}

type linter struct {
	disabled map[string]bool
	found    []Finding
	// ambiguitySteps is what is left of the plain-ambiguous searches'
	// budget; below 0 once it ran out, and the rule searches no more.
	ambiguitySteps int
}

func (l *linter) add(n *Notes, rule string, pos Pos, subject, msg, fix string) {
	if l.disabled[rule] || n.Ignores(rule) {
		return
	}
	l.found = append(l.found, Finding{Rule: rule, Severity: FindLintRule(rule).Severity, Pos: pos, Subject: subject, Message: msg, Fix: fix})
}

func (l *linter) file(m *Model) {
	if m.Prefix == "" {
		l.add(&m.Review, "empty-prefix", m.Review.Pos, "schema",
			"prefix is empty: every key is a bare queue:… or cache:…, which mixes with any other application's keys on the server and cannot be told apart in SCAN, ACL rules or eviction",
			`set a prefix naming the application, such as prefix: "flow:"`)
	}
}

// entry runs the rules that queues and caches share. keyOf makes the full
// key from an expanded pattern.
func (l *linter) entry(kind, name string, keys keyspace.KeySet, keyOf func(string) string, doc string, n *Notes) {
	what := fmt.Sprintf("%s %q", kind, name)
	pat := keys.Pattern
	if strings.TrimSpace(doc) == "" {
		l.add(n, "missing-doc", n.Pos, what,
			fmt.Sprintf("%s has no doc: reviewers and the catalogue cannot tell what it holds or who reads it", kind),
			"add doc: one sentence on what it holds, who writes it and who reads it")
	}
	pattern := pat.String()
	keyPos := n.PosOf("key")
	phs := pat.Placeholders()
	for i, ph := range phs {
		end := len(pattern)
		if i+1 < len(phs) {
			end = phs[i+1].Offset
		}
		after := pattern[ph.Offset:end]
		after = after[strings.IndexByte(after, '}')+1:]
		if ph.Type != keyspace.String || after == "" || keys.Layout == keyspace.Plain {
			continue // plain values are not escaped: plain-ambiguous covers them
		}
		if sep := after[0]; strings.IndexByte(idSeparators, sep) >= 0 {
			example := "node" + string(sep) + "5"
			escaped, _ := pat.Expand(exampleArgs(phs, i, example)...)
			l.add(n, "id-separator", keyPos, what,
				fmt.Sprintf("placeholder {%s} is followed by %q, which IDs often contain; every %q in a value is escaped as %%%02X (%s gives %s)",
					ph.Name, sep, sep, sep, example, escaped),
				fmt.Sprintf("use a separator that IDs do not contain, such as \":\": %s", strings.ReplaceAll(pattern, "}"+string(sep), "}:")))
		}
	}
	args := make([]any, len(phs))
	for i, ph := range phs {
		args[i] = any(typicalString)
		if ph.Type == keyspace.Int {
			args[i] = typicalInt
		}
	}
	if expanded, err := pat.ExpandLayout(keys.Layout, args...); err == nil {
		if key := keyOf(expanded); len(key) > maxKeyBytes {
			l.add(n, "long-key", keyPos, what,
				fmt.Sprintf("keys are %d bytes with typical arguments (a UUID for each string, 13 digits for each int), over %d; Redis stores and compares every key in full",
					len(key), maxKeyBytes),
				"shorten the pattern's literal text or the prefix, or use shorter IDs")
		}
	}
}

// plainAmbiguous reports a plain declaration two tuples of which give one
// key, with the tuples and the key. The search is bounded in each
// declaration and over the schema, like the checker's key comparisons;
// when a bound is reached, the declaration gets a finding that says its
// keys were not searched (and, for the schema's bound, neither were those
// of the plain declarations after it), never silence.
func (l *linter) plainAmbiguous(kind, name, prefix string, keys keyspace.KeySet, n *Notes) {
	if keys.Layout != keyspace.Plain || l.disabled["plain-ambiguous"] || n.Ignores("plain-ambiguous") || l.ambiguitySteps < 0 {
		return
	}
	budget := min(maxAmbiguitySteps, l.ambiguitySteps)
	m, used := keyspace.Ambiguous(keys, budget)
	l.ambiguitySteps -= used
	if used > budget {
		what := fmt.Sprintf("over %d search steps, the limit for one declaration", maxAmbiguitySteps)
		if budget < maxAmbiguitySteps {
			what = fmt.Sprintf("the rest of the %d search steps that the rule may take in a schema, so the plain declarations after it were not searched either", ambiguitySteps)
		}
		l.add(n, "plain-ambiguous", n.PosOf("layout"), fmt.Sprintf("%s %q", kind, name),
			fmt.Sprintf("whether two argument tuples give one key was not decided: the search took %s", what),
			"if no value can hold the pattern's literal text, ignore the rule for this entry (lint_ignore: [plain-ambiguous]); otherwise shorten repeated literal text in plain key patterns")
		return
	}
	if m == nil {
		return
	}
	l.add(n, "plain-ambiguous", n.PosOf("layout"), fmt.Sprintf("%s %q", kind, name),
		fmt.Sprintf("in the plain layout, %s and %s are one key, %s: values are inserted as they are, so a value holding the pattern's literal text (or, for a queue, ending in :dead) reaches another tuple's key; the Python storage system has the same ambiguity",
			tupleText(m.A), tupleText(m.B), prefix+m.Key),
		"if no value can hold the pattern's literal text, ignore the rule for this entry (lint_ignore: [plain-ambiguous]); otherwise move to the tagged layout once the Python system is gone (see the README's \"Migrating from the Python storage system\")")
}

// tupleText writes an example's arguments as ("a_b", "c"), and the part
// of the queue it is when that is not the list itself.
func tupleText(ex keyspace.Example) string {
	parts := make([]string, len(ex.Args))
	for i := range ex.Args {
		if s, ok := ex.Args[i].(string); ok {
			parts[i] = fmt.Sprintf("%q", s)
		} else {
			parts[i] = fmt.Sprint(ex.Args[i])
		}
	}
	text := "(" + strings.Join(parts, ", ") + ")"
	if ex.Part != "" {
		text = "the " + ex.Part + " key of " + text
	}
	return text
}

// exampleArgs are arguments for phs with value v at i and plain ones
// elsewhere.
func exampleArgs(phs []keyspace.Placeholder, i int, v string) []any {
	args := make([]any, len(phs))
	for j, ph := range phs {
		switch {
		case j == i:
			args[j] = v
		case ph.Type == keyspace.Int:
			args[j] = 7
		default:
			args[j] = "x"
		}
	}
	return args
}
