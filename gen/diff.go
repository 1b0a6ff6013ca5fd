package gen

import (
	"fmt"
	"strings"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// Diff compares two checked schemas for review: not the Go they generate,
// but what the change does to data already in Redis. A change is breaking
// when data written under the old schema is stranded, unreachable or read
// wrongly under the new one, and safe otherwise.
//
// An entry of the new schema with an allow_breaking reason turns its
// breaking changes into allowed ones; the file's own allow_breaking does so
// for the prefix and for removed entries. An allow_breaking counts only if
// the old schema does not carry the same one, so an allowance merged with
// one change does not wave through the next.

// Change is one difference between two schemas.
type Change struct {
	Code     string `json:"code"`    // what changed: queue-removed, key-changed, …
	Subject  string `json:"subject"` // `queue "jobs"`, `type "Job" field "id"`, `schema`
	Breaking bool   `json:"breaking"`
	Allowed  string `json:"allowed,omitempty"` // the allow_breaking reason, for an allowed breaking change
	Message  string `json:"message"`
	Pos      Pos    `json:"-"` // in the new schema
}

// Severity is "breaking", "allowed" or "safe".
func (c Change) Severity() string {
	switch {
	case c.Breaking && c.Allowed != "":
		return "allowed"
	case c.Breaking:
		return "breaking"
	}
	return "safe"
}

// Diff returns the changes from old to cur, in the order of cur's lines.
func Diff(old, cur *Model) []Change {
	d := &differ{old: old, cur: cur}
	d.file()
	d.queues()
	d.caches()
	d.types()
	sortByPos(d.out, func(c Change) Pos { return c.Pos })
	return d.out
}

type differ struct {
	old, cur *Model
	out      []Change
}

// allowance is the allow_breaking reason that counts for an entry: its
// own, unless the old entry had the same one.
func allowance(old, cur *Notes) string {
	if cur == nil || cur.AllowBreaking == "" || (old != nil && old.AllowBreaking == cur.AllowBreaking) {
		return ""
	}
	return cur.AllowBreaking
}

func (d *differ) add(breaking bool, allowed, code, subject string, pos Pos, format string, args ...any) {
	if !breaking {
		allowed = ""
	}
	d.out = append(d.out, Change{Code: code, Subject: subject, Breaking: breaking, Allowed: allowed, Pos: pos, Message: fmt.Sprintf(format, args...)})
}

func (d *differ) file() {
	old, cur := d.old, d.cur
	allowed := allowance(&old.Review, &cur.Review)
	if old.Prefix != cur.Prefix {
		d.add(true, allowed, "prefix-changed", "schema", cur.Review.PosOf("prefix"),
			"prefix changed from %q to %q: every key written under the old prefix is unreachable", old.Prefix, cur.Prefix)
	}
	if old.Package != cur.Package {
		d.add(false, "", "package-changed", "schema", cur.Review.PosOf("package"),
			"Go package changed from %s to %s; no data is affected", old.Package, cur.Package)
	}
}

// entryView is what the diff compares of a queue or a cache.
type entryView struct {
	kind, name, doc string
	key             *keyspace.Pattern
	payload         *TypeRef
	notes           *Notes
	keyOf           func(prefix, name string) string
	settings        [][2]string // safe settings: name, value
	mode            string      // a queue's delivery; "" for caches
	shards          int         // a queue's shards; 0 for caches
	layout          keyspace.Layout
}

func queueView(q *QueueSpec) entryView {
	v := entryView{kind: "queue", name: q.Name, key: q.Key, doc: q.Doc, payload: q.Payload, notes: &q.Review, keyOf: q.KeyOf, mode: "at-most-once", shards: q.Shards, layout: q.Layout}
	if r := q.Reliable; r != nil {
		v.mode = "at-least-once"
		v.settings = [][2]string{{"lease", durationText(r.Lease)}, {"max_deliveries", fmt.Sprint(r.MaxDeliveries)}, {"dedupe_window", durationText(r.DedupeWindow)}}
	}
	return v
}

func cacheView(c *CacheSpec) entryView {
	ttl := "none"
	if !c.NoExpiry {
		ttl = durationText(c.TTL)
	}
	return entryView{kind: "cache", name: c.Name, key: c.Key, doc: c.Doc, payload: c.Payload, notes: &c.Review, keyOf: keyspace.CacheKey,
		settings: [][2]string{{"ttl", ttl}, {"local", localText(c.Local)}}, layout: c.Layout}
}

// localText is a cache's local setting as diff shows it.
func localText(n int) string {
	if n == 0 {
		return "off"
	}
	return fmt.Sprintf("%d %s", n, pluralWord(n, "entry", "entries"))
}

func (d *differ) queues() {
	d.entries(views(d.old.Queues, queueView), views(d.cur.Queues, queueView), "queues")
}

func (d *differ) caches() {
	d.entries(views(d.old.Caches, cacheView), views(d.cur.Caches, cacheView), "caches")
}

func views[T any](items []T, view func(T) entryView) []entryView {
	out := make([]entryView, len(items))
	for i, it := range items {
		out[i] = view(it)
	}
	return out
}

// entries compares the queues or the caches of the two schemas by name. An
// entry that is gone is a rename when an added entry has the same key
// pattern (up to placeholder names) and payload: its data stays reachable.
func (d *differ) entries(old, cur []entryView, section string) {
	byName := func(vs []entryView) map[string]*entryView {
		m := map[string]*entryView{}
		for i := range vs {
			m[vs[i].name] = &vs[i]
		}
		return m
	}
	oldBy, curBy := byName(old), byName(cur)
	renamedTo := map[string]bool{}
	for i := range old {
		o := &old[i]
		if c := curBy[o.name]; c != nil {
			d.entry(o, c)
			continue
		}
		subject := fmt.Sprintf("%s %q", o.kind, o.name)
		var to *entryView
		for j := range cur {
			c := &cur[j]
			if oldBy[c.name] == nil && !renamedTo[c.name] && patternShape(c.key) == patternShape(o.key) && c.layout == o.layout && c.payload.String() == o.payload.String() {
				to = c
				break
			}
		}
		if to != nil {
			renamedTo[to.name] = true
			d.add(false, "", o.kind+"-renamed", subject, to.notes.Pos,
				"%s renamed to %q; its keys (%s) are unchanged, so its data stays reachable; Go callers of %s() must use %s()",
				o.kind, to.name, o.keyOf(d.cur.Prefix, to.key.Template()), exportedName(o.name), exportedName(to.name))
			d.entry(o, to)
			continue
		}
		d.add(true, allowance(&d.old.Review, &d.cur.Review), o.kind+"-removed", subject, d.cur.Review.PosOf(section),
			"%s removed: what is stored under its keys (%s) is stranded; drain or migrate it before this ships", o.kind, o.keyOf(d.old.Prefix, o.key.Template()))
	}
	for i := range cur {
		if c := &cur[i]; oldBy[c.name] == nil && !renamedTo[c.name] {
			d.add(false, "", c.kind+"-added", fmt.Sprintf("%s %q", c.kind, c.name), c.notes.Pos, "new %s (keys %s)", c.kind, c.keyOf(d.cur.Prefix, c.key.Template()))
		}
	}
}

// entry compares one queue or cache present in both schemas.
func (d *differ) entry(o, c *entryView) {
	subject := fmt.Sprintf("%s %q", c.kind, c.name)
	allowed := allowance(o.notes, c.notes)
	keyPos := c.notes.PosOf("key")
	switch oldShape, curShape := patternShape(o.key), patternShape(c.key); {
	case oldShape != curShape && placeholderTypes(o.key) != placeholderTypes(c.key) && literalText(o.key) == literalText(c.key):
		d.add(true, allowed, "placeholder-type-changed", subject, keyPos,
			"key pattern %q became %q: a placeholder's type changed, and keys written for the old type are not found for the new one", o.key, c.key)
	case oldShape != curShape:
		d.add(true, allowed, "key-changed", subject, keyPos,
			"key pattern changed from %q to %q: everything stored under the old keys (%s) is unreachable", o.key, c.key, o.keyOf(d.old.Prefix, o.key.Template()))
	case o.key.String() != c.key.String():
		d.add(false, "", "placeholder-renamed", subject, keyPos,
			"key pattern %q became %q: placeholders were renamed, the keys are the same; only the accessor's parameter names change", o.key, c.key)
	}
	if o.layout != c.layout {
		if layoutKeepsKeys(o, c) {
			d.add(false, "", "layout-changed", subject, c.notes.PosOf("layout"),
				"layout changed from %s to %s: the key pattern has no string placeholder, so the keys are the same in both layouts (%s)", o.layout, c.layout, c.keyOf(d.cur.Prefix, c.key.Template()))
		} else {
			d.add(true, allowed, "layout-changed", subject, c.notes.PosOf("layout"), "%s", layoutChange(d.old.Prefix, d.cur.Prefix, o, c))
		}
	}
	if o.payload.String() != c.payload.String() {
		d.add(true, allowed, "payload-changed", subject, c.notes.PosOf("payload"),
			"payload type changed from %s to %s: what is stored now was written as %s and is read as %s", o.payload, c.payload, o.payload, c.payload)
	}
	if o.mode != c.mode {
		d.add(true, allowed, "delivery-changed", subject, c.notes.PosOf("delivery"),
			"delivery changed from %s to %s: the two keep items in different layouts, so items queued under the old one are not delivered; drain the queue first", o.mode, c.mode)
	}
	if o.shards != c.shards && o.shards > 0 && c.shards > 0 {
		d.add(true, allowed, "shards-changed", subject, c.notes.PosOf("shards"), "%s", shardsChange(d.old.Prefix, o, c))
	}
	for i, s := range c.settings {
		if i < len(o.settings) && o.settings[i][0] == s[0] && o.settings[i][1] != s[1] {
			d.add(false, "", strings.ReplaceAll(s[0], "_", "-")+"-changed", subject, c.notes.PosOf(s[0]),
				"%s changed from %s to %s", s[0], o.settings[i][1], s[1])
		}
	}
	if o.doc != c.doc {
		d.add(false, "", "doc-changed", subject, c.notes.PosOf("doc"), "doc changed")
	}
}

// layoutKeepsKeys reports a layout change that moves no key: a cache
// (whose key has no braces in either layout) whose pattern, the same shape
// before and after, has no string placeholder, the only thing the two
// layouts write differently. A queue's key changes whatever its pattern:
// the tagged layout puts it between braces.
func layoutKeepsKeys(o, c *entryView) bool {
	if o.kind != "cache" || patternShape(o.key) != patternShape(c.key) {
		return false
	}
	for _, ph := range c.key.Placeholders() {
		if ph.Type == keyspace.String {
			return false
		}
	}
	return true
}

// layoutChange is the message of a change of an entry's layout from o's
// to c's: the old and the new key of an example tuple, and what to do.
func layoutChange(oldPrefix, curPrefix string, o, c *entryView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "layout changed from %s to %s: ", o.layout, c.layout)
	args := layoutExample(c.key)
	oldName, oerr := o.key.ExpandLayout(o.layout, args...)
	curName, cerr := c.key.ExpandLayout(c.layout, args...)
	if oerr == nil && cerr == nil && oldName == curName {
		// A cache whose example values hold no byte the tagged layout
		// escapes ("node_5" under "output:{node_id}"): show one that does.
		args = layoutExample(c.key, escapedByte(c.key))
		oldName, oerr = o.key.ExpandLayout(o.layout, args...)
		curName, cerr = c.key.ExpandLayout(c.layout, args...)
	}
	if oerr == nil && cerr == nil && patternShape(o.key) == patternShape(c.key) {
		fmt.Fprintf(&b, "%s was %s and is now %s", exampleText(c.key, args), o.keyOf(oldPrefix, oldName), c.keyOf(curPrefix, curName))
	} else {
		fmt.Fprintf(&b, "keys were %s and are now %s", o.keyOf(oldPrefix, o.key.Template()), c.keyOf(curPrefix, c.key.Template()))
	}
	if o.kind == "queue" {
		b.WriteString(", so what is stored under the old keys is unreachable")
		b.WriteString("; drain the queue (Len is 0 and its dead letters are handled) with the old build before deploying the new one")
	} else {
		// Values of bytes the tagged layout leaves as they are give the
		// same key in both layouts; the others move.
		fmt.Fprintf(&b, ", so entries whose values hold a byte the tagged layout escapes (such as %s) are unreachable; the new build misses them until they are written again under the new key", escapedText(c.key))
	}
	return b.String()
}

// escapedByte returns a byte that the tagged layout escapes in p's values
// and a plain value may hold: the first such byte of p's literal text,
// else '%'.
func escapedByte(p *keyspace.Pattern) byte {
	if s := escapedText(p); s != "" {
		return s[0]
	}
	return '%'
}

// escapedText lists the ASCII bytes of p's literal text that the tagged
// layout escapes in values, then '%' and the other bytes it always
// escapes, as
// "_ % { } * ? [ ] \\".
func escapedText(p *keyspace.Pattern) string {
	var out []string
	seen := map[byte]bool{}
	lit := reshape(p, func(keyspace.Placeholder) string { return "" })
	for i := 0; i < len(lit); i++ {
		if c := lit[i]; c < 0x80 && !keyspace.Verbatim(c) && !seen[c] {
			seen[c] = true
			out = append(out, string(c))
		}
	}
	for _, c := range []byte("%{}*?[]\\") {
		if !seen[c] {
			seen[c] = true
			out = append(out, string(c))
		}
	}
	return strings.Join(out, " ")
}

// layoutExample returns the arguments diff shows a layout change with:
// node_5, node_8, … for strings, which the tagged layout escapes (_ is
// %5F there when the pattern's literal text has it), and 7 for ints; with
// sep, node<sep>5, … instead.
func layoutExample(p *keyspace.Pattern, sep ...byte) []any {
	args := make([]any, len(p.Placeholders()))
	for i, ph := range p.Placeholders() {
		args[i] = fmt.Sprintf("node_%d", 5+3*i)
		if len(sep) > 0 {
			args[i] = fmt.Sprintf("node%c%d", sep[0], 5+3*i)
		}
		if ph.Type == keyspace.Int {
			args[i] = 7
		}
	}
	return args
}

// exampleText writes args of p as (source_id="node_5", attempt=7), or
// "the key" when p has no placeholders.
func exampleText(p *keyspace.Pattern, args []any) string {
	if len(args) == 0 {
		return "the key"
	}
	parts := make([]string, len(args))
	for i, ph := range p.Placeholders() {
		if s, ok := args[i].(string); ok {
			parts[i] = fmt.Sprintf("%s=%q", ph.Name, s)
		} else {
			parts[i] = fmt.Sprintf("%s=%v", ph.Name, args[i])
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// shardsChange is the message of a change of a queue's shards from o's to
// c's: what is stranded, and how to drain it.
func shardsChange(prefix string, o, c *entryView) string {
	name := o.key.Template()
	var b strings.Builder
	fmt.Fprintf(&b, "shards changed from %d to %d: ", o.shards, c.shards)
	if c.shards > o.shards {
		// Shard 0 is the unsharded key, and shards 1… keep theirs.
		fmt.Fprintf(&b, "nothing is stranded (%s), but consumers still on the old build never read %s (%s); deploy the consumers first", shardsOf(0, o.shards, "keeps its keys", "keep their keys"), shardRange(o.shards, c.shards), shardKeys(prefix, name, o.shards, c.shards))
	} else {
		fmt.Fprintf(&b, "items on the removed %s (%s) are stranded: the new build never reads them", shardRange(c.shards, o.shards), shardKeys(prefix, name, c.shards, o.shards))
		if o.mode == "at-least-once" {
			b.WriteString(", nor their in-flight, delayed and dead items")
		}
		b.WriteString("; drain them: deploy the producers first, keep consumers of the old build running until those shards are empty (LLEN of each is 0")
		if o.mode == "at-least-once" {
			b.WriteString(", and ZCARD of its :leases and :delayed; requeue or purge its dead letters with the old build")
		}
		b.WriteString("), then deploy the consumers")
	}
	if o.mode == "at-least-once" && c.mode == "at-least-once" {
		b.WriteString("; an ID's shard depends on the count, so a PushID retried across the change may be stored twice")
	}
	return b.String()
}

// shardRange names shards from to to-1.
func shardRange(from, to int) string {
	if to-from == 1 {
		return fmt.Sprintf("shard %d", from)
	}
	return fmt.Sprintf("shards %d to %d", from, to-1)
}

// shardsOf names shards from to to-1 as the subject of a verb: "shard 0
// keeps", "shards 0 to 3 keep".
func shardsOf(from, to int, one, many string) string {
	if to-from == 1 {
		return shardRange(from, to) + " " + one
	}
	return shardRange(from, to) + " " + many
}

// shardKeys shows the keys of shards from to to-1 of the queue called name:
// the first, and the last when there are more.
func shardKeys(prefix, name string, from, to int) string {
	first := keyspace.ShardKey(prefix, name, from)
	switch to - from {
	case 1:
		return first
	case 2:
		return first + ", " + keyspace.ShardKey(prefix, name, to-1)
	}
	return first + " … " + keyspace.ShardKey(prefix, name, to-1)
}

func (d *differ) types() {
	oldBy := map[string]*TypeSpec{}
	for _, t := range d.old.Types {
		oldBy[t.Name] = t
	}
	curBy := map[string]bool{}
	for _, t := range d.cur.Types {
		curBy[t.Name] = true
		subject := fmt.Sprintf("type %q", t.Name)
		o := oldBy[t.Name]
		if o == nil {
			d.add(false, "", "type-added", subject, t.Review.Pos, "new type")
			continue
		}
		d.fields(o, t)
		if o.Doc != t.Doc {
			d.add(false, "", "doc-changed", subject, t.Review.PosOf("doc"), "doc changed")
		}
	}
	for _, o := range d.old.Types {
		if !curBy[o.Name] {
			d.add(false, "", "type-removed", fmt.Sprintf("type %q", o.Name), d.cur.Review.PosOf("types"),
				"type removed; no payload uses it any more (a payload that did is reported on its own), so no data is affected, but Go code that names %s stops compiling", o.Name)
		}
	}
}

// fields compares the fields of a type present in both schemas. A removed
// field and an added one of the same type are a rename: its JSON name
// changed.
func (d *differ) fields(o, t *TypeSpec) {
	allowed := allowance(&o.Review, &t.Review)
	oldBy := map[string]*FieldSpec{}
	for _, f := range o.Fields {
		oldBy[f.Name] = f
	}
	curBy := map[string]*FieldSpec{}
	for _, f := range t.Fields {
		curBy[f.Name] = f
	}
	subject := func(f string) string { return fmt.Sprintf("type %q field %q", t.Name, f) }
	renamed := map[string]bool{}
	for _, of := range o.Fields {
		f := curBy[of.Name]
		if f == nil {
			var to *FieldSpec
			for _, nf := range t.Fields {
				if oldBy[nf.Name] == nil && !renamed[nf.Name] && nf.Type.String() == of.Type.String() {
					to = nf
					break
				}
			}
			if to != nil {
				renamed[to.Name] = true
				d.add(true, allowed, "field-renamed", subject(of.Name), to.Pos,
					"field renamed to %q: its JSON name changes, so stored items that have %q read as if it were missing, and consumers on the old build miss %q", to.Name, of.Name, to.Name)
				continue
			}
			d.add(true, allowed, "field-removed", subject(of.Name), t.Review.Pos,
				"field removed: consumers still running the old build read it as its zero value from new items")
			continue
		}
		if of.Type.String() != f.Type.String() {
			d.add(true, allowed, "field-type-changed", subject(f.Name), f.Pos,
				"type changed from %s to %s: stored items with the old type fail to decode", of.Type, f.Type)
		}
		switch {
		case of.Optional && !f.Optional:
			d.add(true, allowed, "field-made-required", subject(f.Name), f.Pos,
				"made required: stored items and old producers may omit it")
		case !of.Optional && f.Optional:
			d.add(false, "", "field-made-optional", subject(f.Name), f.Pos, "made optional: producers omit it when it is zero")
		}
		if of.Doc != f.Doc {
			d.add(false, "", "doc-changed", subject(f.Name), f.Pos, "doc changed")
		}
	}
	for _, f := range t.Fields {
		if oldBy[f.Name] != nil || renamed[f.Name] {
			continue
		}
		if f.Optional {
			d.add(false, "", "field-added", subject(f.Name), f.Pos, "new optional field")
		} else {
			d.add(true, allowed, "required-field-added", subject(f.Name), f.Pos,
				"new required field: items already stored, and those old producers write, lack it and read as its zero value; make it optional: true, or allow the break")
		}
	}
}

// patternShape is a key pattern with its placeholder names left out:
// "edge:{a}:{b:int}" → "edge:{string}:{int}". Two patterns with the same
// shape give the same keys.
func patternShape(p *keyspace.Pattern) string {
	return reshape(p, func(ph keyspace.Placeholder) string { return "{" + ph.Type.String() + "}" })
}

// placeholderTypes is the list of a pattern's placeholder types.
func placeholderTypes(p *keyspace.Pattern) string {
	var b strings.Builder
	for _, ph := range p.Placeholders() {
		b.WriteString(ph.Type.String() + ",")
	}
	return b.String()
}

// literalText is a pattern with every placeholder written "{}".
func literalText(p *keyspace.Pattern) string {
	return reshape(p, func(keyspace.Placeholder) string { return "{}" })
}

// reshape writes p with each placeholder replaced by what write returns.
func reshape(p *keyspace.Pattern, write func(keyspace.Placeholder) string) string {
	pattern := p.String()
	var b strings.Builder
	last := 0
	for _, ph := range p.Placeholders() {
		b.WriteString(pattern[last:ph.Offset])
		b.WriteString(write(ph))
		last = ph.Offset + strings.IndexByte(pattern[ph.Offset:], '}') + 1
	}
	b.WriteString(pattern[last:])
	return b.String()
}
