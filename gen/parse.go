package gen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RawSchema is a schema as written: its shape is checked, its meaning is
// not.
// Every value carries its position, for Check's messages.
type RawSchema struct {
	Name    string // the file name used in messages
	Version Scalar
	Package Scalar
	Prefix  Scalar
	Types   []*RawType
	Queues  []*RawQueue
	Caches  []*RawCache
	Review  RawReview // for changes to the file as a whole: the prefix, removed entries

	// Where the types, queues and caches keys stand, for reports about
	// entries that are no longer there.
	TypesPos, QueuesPos, CachesPos Pos
}

// RawReview holds the keys that schema review reads (storagegen diff and
// lint), which any type, queue or cache, and the file itself, may carry.
type RawReview struct {
	AllowBreaking Scalar   // allow_breaking: "reason"
	LintIgnore    []Scalar // lint_ignore: [rule-id, …]
}

// reviewKeys returns the keys of r, to add to a mapping's known keys.
func (p *parser) reviewKeys(r *RawReview, what string) []key {
	return []key{
		{name: "allow_breaking", s: &r.AllowBreaking},
		{name: "lint_ignore", fn: func(_, v *yaml.Node) { r.LintIgnore = p.scalars(v, what+" lint_ignore") }},
	}
}

// Scalar is one YAML scalar and where it stands. Set is false when the key
// was absent.
type Scalar struct {
	Value string
	Tag   string // YAML tag: !!str, !!int, !!bool, !!null, …
	Pos   Pos
	Set   bool
}

// RawType is one entry under types.
type RawType struct {
	Name      Scalar
	Doc       Scalar
	Review    RawReview
	Fields    []*RawField
	fields    Scalar // the fields key itself, for "no fields"
	fieldsBad bool   // fields was malformed, already reported
}

// RawField is one field of a type: `name: type` or
// `name: {type: …, optional: …, doc: …}`.
type RawField struct {
	Name     Scalar
	Type     Scalar
	Optional Scalar
	Doc      Scalar
}

// RawQueue is one entry under queues.
type RawQueue struct {
	Name          Scalar
	Key           Scalar
	Payload       Scalar
	Doc           Scalar
	Delivery      Scalar // at-most-once (default) or at-least-once
	Lease         Scalar // at-least-once only
	MaxDeliveries Scalar // at-least-once only
	DedupeWindow  Scalar // at-least-once only
	Shards        Scalar // lists the queue is spread over; default 1
	Layout        Scalar // tagged (default) or plain
	Review        RawReview
}

// RawCache is one entry under caches.
type RawCache struct {
	Name    Scalar
	Key     Scalar
	Payload Scalar
	TTL     Scalar
	Doc     Scalar
	// Local (true or false) keeps entries in each process's memory, at
	// most LocalSize of them.
	Local, LocalSize Scalar
	Layout           Scalar // tagged (default) or plain
	Review           RawReview
}

// Parse reads a schema. It returns the file with every part it could read
// and, if anything was malformed, an ErrorList with every problem. The file
// is nil when src holds no YAML mapping at all (a syntax error, say).
func Parse(filename string, src []byte) (*RawSchema, error) {
	p := &parser{errs: errs{file: filename}}
	if len(src) > MaxSchemaBytes {
		p.errs.add(Pos{1, 1}, "schema is %d bytes, over the limit of %d", len(src), MaxSchemaBytes)
		return nil, p.errs.err()
	}
	root := p.document(src)
	if root == nil {
		return nil, p.errs.err()
	}
	f := &RawSchema{Name: filename}
	p.file(f, root)
	return f, p.errs.err()
}

type parser struct {
	errs errs
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes the single YAML document in src and returns its root
// mapping, or nil after reporting why there is none.
func (p *parser) document(src []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errs.add(Pos{1, 1}, "schema is empty; it needs at least version: 1")
			return nil
		}
		p.yamlError(src, err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errs.add(nodePos(&extra), "schema has more than one YAML document")
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(src, err)
	}
	if len(doc.Content) == 0 {
		p.errs.add(Pos{1, 1}, "schema is empty; it needs at least version: 1")
		return nil
	}
	if pos, ok := countNodes(&doc); !ok {
		p.errs.add(pos, "schema has more than %d YAML nodes, counting each alias as the nodes it stands for; that is the limit", MaxYAMLNodes)
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errs.add(nodePos(root), "schema must be a mapping with version, types, queues and caches, not %s", kindName(root))
		return nil
	}
	return root
}

// yamlParserProblems are the problems of the YAML library's parser, which
// it reports at a 0-based line; its scanner's problems come 1-based.
var yamlParserProblems = map[string]bool{
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

// yamlBlockProblems are the parser's problems with a line that fits no
// block mapping or sequence around it, a mis-indented line most often.
// The library reports them at the line where the enclosing mapping or
// sequence starts (its "context mark"), or, when that is the first line of
// the file, at the offending line (its "problem mark"); the problem mark
// itself is not in the error. blockProblemLine finds it.
var yamlBlockProblems = map[string]bool{
	"did not find expected key":           true,
	"did not find expected '-' indicator": true,
}

func (p *parser) yamlError(src []byte, err error) {
	msg := err.Error()
	for line := range strings.SplitSeq(msg, "\n") {
		line = strings.TrimSpace(line)
		if m := yamlLineRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			if yamlParserProblems[m[2]] {
				n++
			}
			pos, hint := Pos{n, 1}, ""
			switch {
			case yamlBlockProblems[m[2]]:
				pos = blockProblemLine(src, n, m[2])
			case m[2] == "mapping values are not allowed in this context":
				// The scanner's line is right; its column is the line's
				// indentation, which is most often what is wrong.
				pos = Pos{n, lineIndent(src, n) + 1}
				hint = "; is this line indented deeper than the key above it? Keys of one mapping line up"
			}
			p.errs.add(pos, "YAML syntax: %s%s", m[2], hint)
			return
		}
	}
	p.errs.add(Pos{1, 1}, "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

// blockProblemLine returns the position of the line that the YAML parser
// could not place in a block mapping or sequence, given the line where
// that mapping or sequence starts (from) and the parser's problem. The
// parser fails on the first token of that line, so it is the last line of
// the shortest prefix of src, from line from on, that fails with the same
// problem: prefixes that end earlier parse, since the end of the input
// closes every open block, and longer ones fail there too. A binary search
// finds it in a few parses of a file that is already broken, however long.
// Its column is that of the line's first non-blank byte.
func blockProblemLine(src []byte, from int, problem string) Pos {
	lines := bytes.SplitAfter(src, []byte("\n"))
	fails := func(n int) bool {
		m := yamlLineRE.FindStringSubmatch(firstYAMLError(bytes.Join(lines[:n], nil)))
		return m != nil && m[2] == problem
	}
	lo, hi := max(from, 1), len(lines)
	if lo > hi || !fails(hi) {
		return Pos{from, 1}
	}
	for lo < hi { // fails(hi) holds; find the smallest such n
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return Pos{hi, lineIndent(src, hi) + 1}
}

// lineIndent returns the number of blanks that start line n (1-based) of
// src, or 0 when there is no such line.
func lineIndent(src []byte, n int) int {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if n < 1 || n > len(lines) {
		return 0
	}
	return len(lines[n-1]) - len(bytes.TrimLeft(lines[n-1], " \t"))
}

// firstYAMLError returns the text of the first error in decoding every
// YAML document of src, or "".
func firstYAMLError(src []byte) string {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return ""
		} else if err != nil {
			return err.Error()
		}
	}
}

func (p *parser) file(f *RawSchema, root *yaml.Node) {
	p.keys(root, "schema", append([]key{
		{name: "version", s: &f.Version},
		{name: "package", s: &f.Package},
		{name: "prefix", s: &f.Prefix},
		{name: "types", fn: func(k, v *yaml.Node) {
			f.TypesPos = nodePos(k)
			p.entries(v, "types", func(name Scalar, v *yaml.Node) { f.Types = append(f.Types, p.typeDecl(name, v)) })
		}},
		{name: "queues", fn: func(k, v *yaml.Node) {
			f.QueuesPos = nodePos(k)
			p.entries(v, "queues", func(name Scalar, v *yaml.Node) { f.Queues = append(f.Queues, p.queueDecl(name, v)) })
		}},
		{name: "caches", fn: func(k, v *yaml.Node) {
			f.CachesPos = nodePos(k)
			p.entries(v, "caches", func(name Scalar, v *yaml.Node) { f.Caches = append(f.Caches, p.cacheDecl(name, v)) })
		}},
	}, p.reviewKeys(&f.Review, "schema")...)...)
}

func (p *parser) typeDecl(name Scalar, n *yaml.Node) *RawType {
	t := &RawType{Name: name}
	what := fmt.Sprintf("type %q", name.Value)
	p.keys(n, what, append([]key{
		{name: "doc", s: &t.Doc},
		{name: "fields", fn: func(k, v *yaml.Node) {
			t.fields = Scalar{Pos: nodePos(k), Set: true}
			t.fieldsBad = v.Kind != yaml.MappingNode && !isNull(v)
			p.entries(v, what+" fields", func(fname Scalar, v *yaml.Node) {
				t.Fields = append(t.Fields, p.fieldDecl(name.Value, fname, v))
			})
		}},
	}, p.reviewKeys(&t.Review, what)...)...)
	return t
}

func (p *parser) fieldDecl(typeName string, name Scalar, n *yaml.Node) *RawField {
	fd := &RawField{Name: name}
	what := fmt.Sprintf("type %q field %q", typeName, name.Value)
	if n.Kind != yaml.MappingNode {
		fd.Type = p.scalar(n, what)
		return fd
	}
	p.keys(n, what, key{name: "type", s: &fd.Type}, key{name: "optional", s: &fd.Optional}, key{name: "doc", s: &fd.Doc})
	return fd
}

func (p *parser) queueDecl(name Scalar, n *yaml.Node) *RawQueue {
	q := &RawQueue{Name: name}
	what := fmt.Sprintf("queue %q", name.Value)
	p.keys(n, what, append([]key{
		{name: "key", s: &q.Key}, {name: "payload", s: &q.Payload}, {name: "doc", s: &q.Doc},
		{name: "delivery", s: &q.Delivery}, {name: "lease", s: &q.Lease},
		{name: "max_deliveries", s: &q.MaxDeliveries}, {name: "dedupe_window", s: &q.DedupeWindow},
		{name: "shards", s: &q.Shards}, {name: "layout", s: &q.Layout},
	}, p.reviewKeys(&q.Review, what)...)...)
	return q
}

func (p *parser) cacheDecl(name Scalar, n *yaml.Node) *RawCache {
	c := &RawCache{Name: name}
	what := fmt.Sprintf("cache %q", name.Value)
	p.keys(n, what, append([]key{
		{name: "key", s: &c.Key}, {name: "payload", s: &c.Payload}, {name: "ttl", s: &c.TTL}, {name: "doc", s: &c.Doc},
		{name: "local", s: &c.Local}, {name: "local_size", s: &c.LocalSize}, {name: "layout", s: &c.Layout},
	}, p.reviewKeys(&c.Review, what)...)...)
	return c
}

// key is one known key of a mapping: a scalar stored in *s, or a value
// handed to fn.
type key struct {
	name string
	s    *Scalar
	fn   func(key, val *yaml.Node)
}

// keys walks the mapping n, whose known keys are keys; any other key is
// reported with the list of known ones.
func (p *parser) keys(n *yaml.Node, what string, keys ...key) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	p.mapping(n, what, func(name string, kn, val *yaml.Node) bool {
		for _, k := range keys {
			if k.name != name {
				continue
			}
			if k.s != nil {
				*k.s = p.scalar(val, what+" "+name)
			} else {
				k.fn(kn, val)
			}
			return true
		}
		return false
	}, strings.Join(names, ", "))
}

// mapping walks the mapping n, reporting duplicate keys and keys for which
// fn returns false. A null value counts as an empty mapping.
func (p *parser) mapping(n *yaml.Node, what string, fn func(k string, key, val *yaml.Node) bool, known string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errs.add(nodePos(n), "%s must be a mapping, not %s", what, kindName(n))
		return
	}
	seen := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := resolve(n.Content[i]), resolve(n.Content[i+1])
		if key.Kind != yaml.ScalarNode {
			p.errs.add(nodePos(key), "%s has a key that is not a scalar", what)
			continue
		}
		if prev, dup := seen[key.Value]; dup {
			p.errs.add(nodePos(key), "%s has key %q twice (first at line %d)", what, key.Value, prev.Line)
			continue
		}
		seen[key.Value] = nodePos(key)
		if !fn(key.Value, key, val) {
			p.errs.add(nodePos(key), "%s has unknown key %q (known: %s)", what, key.Value, known)
		}
	}
}

// entries walks a mapping of named entries (types, queues, caches, fields).
func (p *parser) entries(n *yaml.Node, what string, fn func(name Scalar, val *yaml.Node)) {
	p.mapping(n, what, func(k string, key, val *yaml.Node) bool {
		fn(Scalar{Value: k, Tag: key.ShortTag(), Pos: nodePos(key), Set: true}, val)
		return true
	}, "")
}

func (p *parser) scalar(n *yaml.Node, what string) Scalar {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		p.errs.add(nodePos(n), "%s must be a scalar, not %s", what, kindName(n))
		return Scalar{Pos: nodePos(n)}
	}
	return Scalar{Value: n.Value, Tag: n.ShortTag(), Pos: nodePos(n), Set: true}
}

// scalars reads a sequence of scalars.
func (p *parser) scalars(n *yaml.Node, what string) []Scalar {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errs.add(nodePos(n), "%s must be a sequence, like [a, b], not %s", what, kindName(n))
		return nil
	}
	out := make([]Scalar, 0, len(n.Content))
	for _, item := range n.Content {
		if s := p.scalar(item, what+" item"); s.Set {
			out = append(out, s)
		}
	}
	return out
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func nodePos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "an alias"
}
