package gen

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// Catalogue renders m as Markdown for people: every queue, cache and type
// with its key pattern, an example key, placeholders, payload fields, TTL,
// delivery and doc. It is committed beside the generated code, so a pull
// request shows what changes in Redis as a diff of this file.
func Catalogue(m *Model) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	section := func(title string, n int) {
		w("\n## %s\n", title)
		if n == 0 {
			w("\nNone.\n")
		}
	}
	// Each entry's heading names its kind, so that its anchor (GitHub's
	// #queue-jobs, #type-jobs) is unique: a queue and a type, or a type
	// and a section, may share a name.
	entry := func(kind, name, doc string) {
		w("\n### %s `%s`\n\n", kind, name)
		if doc = strings.TrimSpace(doc); doc != "" {
			w("%s\n\n", mdText(doc))
		}
	}
	w("<!-- %s -->\n\n", Header(m.Schema))
	w("# Storage catalogue\n\n")
	w("Every queue, cache and payload type that %s declares, with the key pattern of each. Prefix: %s.\n", mdCode(m.Schema, false), code(m.Prefix))
	w("A key shows each placeholder as `<name>`, or `<name:int>` for an int; the braces of a queue's key are its Redis Cluster hash tag (a queue in the plain layout has none).\n")
	w("Example keys use each placeholder's name, with `-` for `_`, as its value.\n")

	section("Queues", len(m.Queues))
	for _, q := range m.Queues {
		entry("Queue", q.Name, q.Doc)
		w("%s", commonRows("Queues."+q.GoName, q.Key, q.KeyOf(m.Prefix, q.Key.Template()), q.KeyOf(m.Prefix, exampleName(q.Key, q.Layout)), q.Params, q.Payload))
		if q.Layout == keyspace.Plain {
			w("| layout | %s; dead letters at %s |\n", plainRow, mdCode(keyspace.DeadKey(q.KeyOf(m.Prefix, q.Key.Template())), true))
		}
		if q.Shards > 1 {
			name := q.Key.Template()
			w("| shards | %d: %s is shard 0, shard *i* is %s; FIFO per shard only |\n", q.Shards,
				mdCode(keyspace.ShardKey(m.Prefix, name, 0), true), mdCode(keyspace.ShardKeyTemplate(m.Prefix, name), true))
		}
		if r := q.Reliable; r != nil {
			w("| delivery | at-least-once: lease %s, at most %d %s, dedupe window %s |\n",
				durationText(r.Lease), r.MaxDeliveries, pluralWord(r.MaxDeliveries, "delivery", "deliveries"), durationText(r.DedupeWindow))
			w("| dead letters | %s |\n", mdCode(keyspace.DeadKey(keyspace.QueueKey(m.Prefix, q.Key.Template())), true))
		} else {
			w("| delivery | at-most-once |\n")
		}
	}

	section("Caches", len(m.Caches))
	for _, c := range m.Caches {
		entry("Cache", c.Name, c.Doc)
		ttl := "none: entries never expire"
		if !c.NoExpiry {
			ttl = durationText(c.TTL)
		}
		w("%s", commonRows("Caches."+c.GoName, c.Key, keyspace.CacheKey(m.Prefix, c.Key.Template()), keyspace.CacheKey(m.Prefix, exampleName(c.Key, c.Layout)), c.Params, c.Payload))
		if c.Layout == keyspace.Plain {
			w("| layout | %s |\n", plainRow)
		}
		w("| ttl | %s |\n", ttl)
		if c.Local > 0 {
			w("| local | yes: up to %d %s in each process's memory, invalidated by Redis |\n", c.Local, pluralWord(c.Local, "entry", "entries"))
		}
	}

	section("Types", len(m.Types))
	for _, t := range m.Types {
		entry("Type", t.Name, t.Doc)
		w("| JSON name | Go field | type | optional | doc |\n| --- | --- | --- | --- | --- |\n")
		for _, f := range t.Fields {
			opt := "no"
			if f.Optional {
				opt = "yes"
			}
			w("| `%s` | `%s` | %s | %s | %s |\n", f.Name, f.GoName, typeLink(f.Type), opt, mdCell(f.Doc))
		}
	}
	return b.Bytes()
}

// commonRows are the first rows of a queue's or a cache's table.
func commonRows(accessor string, pattern *keyspace.Pattern, key, example string, params []*Param, payload *TypeRef) string {
	return fmt.Sprintf("| | |\n| --- | --- |\n| accessor | `%s(%s)` |\n| key pattern | %s |\n| key | %s |\n| example key | %s |\n| placeholders | %s |\n| payload | %s |\n",
		accessor, paramList(params), mdCode(pattern.String(), true), mdCode(key, true), mdCode(example, true), placeholderList(params), typeLink(payload))
}

func code(s string) string {
	if s == "" {
		return "none"
	}
	return mdCode(s, false)
}

// plainRow describes the plain layout in the catalogue.
const plainRow = "plain: values are inserted as they are, as the Python storage system writes its keys (`storagegen lint` says where two argument tuples give one key)"

// exampleName expands pattern in layout l with each placeholder's name
// ('-' for '_') as its value, and 42 for ints.
func exampleName(p *keyspace.Pattern, l keyspace.Layout) string {
	args := make([]any, len(p.Placeholders()))
	for i, ph := range p.Placeholders() {
		args[i] = strings.ReplaceAll(ph.Name, "_", "-")
		if ph.Type == keyspace.Int {
			args[i] = 42
		}
	}
	name, err := p.ExpandLayout(l, args...)
	if err != nil {
		return p.String()
	}
	return name
}

func paramList(ps []*Param) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		t := "string"
		if p.Int {
			t = "int"
		}
		out[i] = p.GoName + " " + t
	}
	return strings.Join(out, ", ")
}

func placeholderList(ps []*Param) string {
	if len(ps) == 0 {
		return "none"
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		t := "string"
		if p.Int {
			t = "int"
		}
		out[i] = fmt.Sprintf("`{%s}` %s", p.Name, t)
	}
	return strings.Join(out, ", ")
}

// typeLink writes a type as one code span, or, when it ends in a declared
// type, as a code span of the slices and maps around it followed by a link
// to that type's section: `[]map[string]`[Node](#type-node). Two code spans are
// never adjacent, since two backticks in a row would open a different span.
func typeLink(t *TypeRef) string {
	var outer strings.Builder
	for ; t.Kind == Slice || t.Kind == Map; t = t.Elem {
		if t.Kind == Slice {
			outer.WriteString("[]")
		} else {
			outer.WriteString("map[string]")
		}
	}
	if t.Kind != Declared {
		return "`" + outer.String() + t.String() + "`"
	}
	link := fmt.Sprintf("[%s](#type-%s)", t.Name, strings.ToLower(t.Name))
	if outer.Len() == 0 {
		return link
	}
	return "`" + outer.String() + "`" + link
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
