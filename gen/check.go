package gen

import (
	"fmt"
	"go/token"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dave/jennifer/jen"
	"github.com/storagegen/storagegen/internal/keyspace"
)

// CheckOptions are the choices the command makes on top of the schema.
type CheckOptions struct {
	// Package overrides the schema's package (the -package flag).
	Package string
	// DefaultPackage is used when neither Package nor the schema's package
	// is set: the base name of the output directory.
	DefaultPackage string
}

var packageRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Check checks a parsed schema and decides every Go name. It reports every
// problem at once, as an ErrorList.
func Check(f *RawSchema, opts CheckOptions) (*Model, error) {
	c := &checker{errs: errs{file: f.Name}, types: map[string]*TypeSpec{}, typePos: map[string]Pos{}, importPaths: map[string]Pos{}}
	m := &Model{Schema: path.Base(strings.ReplaceAll(f.Name, `\`, "/"))}
	if strings.ContainsFunc(m.Schema, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '<' || r == '>' }) || keyTextProblem(m.Schema) != "" {
		// The name is written into the header comment of every file.
		c.errs.add(Pos{1, 1}, "schema file name %q has a control, invisible, < or > character; rename the file", m.Schema)
	}
	if !c.checkSize(f) {
		return nil, c.errs.err()
	}
	c.header(f, m, opts)
	for _, td := range f.Types {
		if t := c.typeDecl(td); t != nil {
			m.Types = append(m.Types, t)
		}
	}
	c.resolveFields()
	c.cycles(m)

	for _, t := range m.Types {
		for _, fl := range t.Fields {
			c.noteImports(fl.Type, fl.Pos)
		}
	}
	names := map[string]string{}
	for _, qd := range f.Queues {
		if q := c.queueDecl(qd, names); q != nil {
			m.Queues = append(m.Queues, q)
		}
	}
	names = map[string]string{}
	for _, cd := range f.Caches {
		if k := c.cacheDecl(cd, names); k != nil {
			m.Caches = append(m.Caches, k)
		}
	}
	c.disjointKeys(m)
	m.Imports = c.importNames()
	c.checkParams(m)
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	return m, nil
}

type checker struct {
	errs        errs
	types       map[string]*TypeSpec
	typePos     map[string]Pos
	importPaths map[string]Pos // of external payload and field types: where each is first used
	params      []paramUse
	fieldRefs   []fieldRef
}

// fieldRef is a field type waiting for every type to be declared.
type fieldRef struct {
	what string
	pos  Pos
	typ  *TypeRef
}

type paramUse struct {
	what string
	pos  Pos
	p    *Param
}

func (c *checker) header(f *RawSchema, m *Model, opts CheckOptions) {
	switch {
	case !f.Version.Set:
		c.errs.add(Pos{1, 1}, "missing version (add version: 1)")
	case f.Version.Tag != "!!int" || f.Version.Value != "1":
		c.errs.add(f.Version.Pos, "version %q is not supported; 1 is the only version", f.Version.Value)
	}

	m.Package = opts.DefaultPackage
	pkgPos := Pos{1, 1}
	if f.Package.Set {
		m.Package, pkgPos = f.Package.Value, f.Package.Pos
	}
	if opts.Package != "" {
		m.Package = opts.Package
	}
	switch {
	case m.Package == "":
		c.errs.add(pkgPos, "package is not set and cannot be derived from the output directory")
	case !packageRE.MatchString(m.Package) || token.IsKeyword(m.Package):
		c.errs.add(pkgPos, "package %q is not a valid Go package name (lower case letters, digits and _, not a keyword)", m.Package)
	case m.Package == "main":
		c.errs.add(pkgPos, "package main cannot be imported; generated code is a package that nodes import, so name it after what it holds, such as storage")
	}

	m.Review = c.notes(f.Prefix.Pos, f.Review, "schema", map[string]Scalar{"prefix": f.Prefix, "package": f.Package})
	if !f.Prefix.Set {
		m.Review.Pos = Pos{1, 1}
	}
	for k, p := range map[string]Pos{"types": f.TypesPos, "queues": f.QueuesPos, "caches": f.CachesPos} {
		if p.Line > 0 {
			m.Review.At[k] = p
		}
	}
	if f.Prefix.Set {
		if f.Prefix.Tag != "!!str" && f.Prefix.Tag != "!!null" {
			c.errs.add(f.Prefix.Pos, "prefix must be a string; quote it")
		} else if err := keyspace.CheckPrefix(f.Prefix.Value); err != nil {
			c.errs.add(f.Prefix.Pos, "prefix %q %v", f.Prefix.Value, err)
		} else if why := keyTextProblem(f.Prefix.Value); why != "" {
			c.errs.add(f.Prefix.Pos, "prefix %q %s", f.Prefix.Value, why)
		} else if i := strings.IndexAny(f.Prefix.Value, "<>"); i >= 0 {
			c.errs.add(f.Prefix.Pos, "prefix %q has %q at offset %d; it may not contain < or >, which the documentation uses to show placeholders (<name>)", f.Prefix.Value, f.Prefix.Value[i], i)
		}
		m.Prefix = f.Prefix.Value
	}
}

func (c *checker) typeDecl(td *RawType) *TypeSpec {
	name := td.Name.Value
	ok := true
	switch {
	case !isCamel(name):
		c.errs.add(td.Name.Pos, "type %q: name must be UpperCamelCase (like NodeMessage)", name)
		ok = false
	case generatedIdents[name]:
		c.errs.add(td.Name.Pos, "type %q: name is used by generated code (Store, Queues, Caches, New, Prefix)", name)
		ok = false
	}
	if !td.fieldsBad && len(td.Fields) == 0 {
		c.errs.add(td.Name.Pos, "type %q has no fields", name)
	}
	what := fmt.Sprintf("type %q", name)
	t := &TypeSpec{Name: name, Doc: c.doc(td.Doc, what), Review: c.notes(td.Name.Pos, td.Review, what, map[string]Scalar{"doc": td.Doc})}
	goNames := map[string]string{}
	for _, fd := range td.Fields {
		fname := fd.Name.Value
		what := fmt.Sprintf("type %q field %q", name, fname)
		f := &FieldSpec{Name: fname, Doc: c.doc(fd.Doc, what), Pos: fd.Name.Pos}
		if !isSnake(fname) {
			c.errs.add(fd.Name.Pos, "%s: name must be lower_snake_case", what)
			continue
		}
		f.GoName = exportedName(fname)
		if prev, dup := goNames[f.GoName]; dup {
			c.errs.add(fd.Name.Pos, "%s: Go name %s is already used by field %q", what, f.GoName, prev)
			continue
		}
		goNames[f.GoName] = fname
		if !fd.Type.Set {
			c.errs.add(fd.Name.Pos, "%s: missing type", what)
			continue
		}
		tr, msg := parseTypeExpr(fd.Type.Value)
		if msg != "" {
			c.errs.add(fd.Type.Pos, "%s: type %q %s", what, shorten(fd.Type.Value), msg)
			continue
		}
		f.Type = tr
		c.fieldRefs = append(c.fieldRefs, fieldRef{what: what, pos: fd.Type.Pos, typ: tr})
		if fd.Optional.Set {
			if fd.Optional.Tag != "!!bool" {
				c.errs.add(fd.Optional.Pos, "%s: optional must be true or false", what)
			}
			f.Optional = fd.Optional.Value == "true"
		}
		t.Fields = append(t.Fields, f)
	}
	if !ok {
		return nil
	}
	c.types[name] = t
	c.typePos[name] = td.Name.Pos
	return t
}

// resolveFields reports field types that name undeclared types. It runs
// once every type is known, since a field may name a type declared later.
func (c *checker) resolveFields() {
	for _, r := range c.fieldRefs {
		if name := c.undeclared(r.typ); name != "" {
			c.errs.add(r.pos, "%s: unknown type %s; declare it under types or write import/path.%s", r.what, name, name)
		}
	}
}

func (c *checker) undeclared(t *TypeRef) string {
	switch t.Kind {
	case Slice, Map:
		return c.undeclared(t.Elem)
	case Declared:
		if c.types[t.Name] == nil {
			return t.Name
		}
	}
	return ""
}

// cycles reports types that contain themselves without a slice or map in
// between: Go rejects them as invalid recursive types.
func (c *checker) cycles(m *Model) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	reported := map[string]bool{}
	var visit func(t *TypeSpec, path []string)
	visit = func(t *TypeSpec, path []string) {
		state[t.Name] = visiting
		path = append(path, t.Name)
		for _, fl := range t.Fields {
			if fl.Type == nil || fl.Type.Kind != Declared {
				continue
			}
			next := c.types[fl.Type.Name]
			if next == nil {
				continue
			}
			switch state[next.Name] {
			case visiting:
				start := 0
				for i, n := range path {
					if n == next.Name {
						start = i
					}
				}
				cycle := append(append([]string(nil), path[start:]...), next.Name)
				if !reported[next.Name] {
					reported[next.Name] = true
					c.errs.add(c.typePos[next.Name], "type %q contains itself (%s); use []%s or map[string]%s to break the cycle",
						next.Name, strings.Join(cycle, " → "), next.Name, next.Name)
				}
			case unvisited:
				visit(next, path)
			}
		}
		state[t.Name] = done
	}
	for _, t := range m.Types {
		if state[t.Name] == unvisited {
			visit(t, nil)
		}
	}
}

// noteImports records the import paths that t uses, at pos. Two paths
// that differ only in case are refused: the go command will not import
// both into one package ("case-insensitive import collision").
func (c *checker) noteImports(t *TypeRef, pos Pos) {
	switch t.Kind {
	case Slice, Map:
		c.noteImports(t.Elem, pos)
	case External:
		if _, ok := c.importPaths[t.Path]; ok {
			return
		}
		for p, at := range c.importPaths {
			if strings.EqualFold(p, t.Path) {
				c.errs.add(pos, "import path %q differs only in case from %q at line %d, column %d; Go cannot import both into one package", t.Path, p, at.Line, at.Col)
				return
			}
		}
		c.importPaths[t.Path] = pos
	}
}

// entry is what queues and caches have in common.
type entry struct {
	kind    string // "queue" or "cache"
	name    Scalar
	key     Scalar
	payload Scalar
	doc     Scalar
}

// common checks an entry's name, key pattern and payload. It returns nil
// values for the parts that are wrong.
func (c *checker) common(e entry, names map[string]string) (goName string, key *keyspace.Pattern, params []*Param, payload *TypeRef, ok bool) {
	what := fmt.Sprintf("%s %q", e.kind, e.name.Value)
	ok = true
	if !isSnake(e.name.Value) {
		c.errs.add(e.name.Pos, "%s: name must be lower_snake_case", what)
		ok = false
	} else {
		goName = exportedName(e.name.Value)
		if prev, dup := names[goName]; dup {
			c.errs.add(e.name.Pos, "%s: Go name %s is already used by %s %q", what, goName, e.kind, prev)
			ok = false
		}
		names[goName] = e.name.Value
	}

	c.doc(e.doc, what)
	pattern, keyPos := e.name.Value, e.name.Pos
	if e.key.Set {
		pattern, keyPos = e.key.Value, e.key.Pos
	}
	key, err := keyspace.ParsePattern(pattern)
	if len(pattern) > MaxKeyPatternBytes {
		c.errs.add(keyPos, "%s: key pattern is %d bytes, over the limit of %d", what, len(pattern), MaxKeyPatternBytes)
		ok, err = false, nil
	} else if why := keyTextProblem(pattern); err == nil && why != "" {
		c.errs.add(keyPos, "%s: key pattern %q %s", what, pattern, why)
		ok = false
	} else if err != nil {
		for _, pe := range patternErrors(err) {
			c.errs.add(keyPos, "%s: %s", what, pe)
		}
		ok = false
	} else {
		seen := map[string]string{}
		for _, ph := range key.Placeholders() {
			if !isSnake(ph.Name) {
				c.errs.add(keyPos, "%s: placeholder {%s} must be lower_snake_case", what, ph.Name)
				ok = false
				continue
			}
			p := &Param{Name: ph.Name, GoName: paramName(ph.Name), Int: ph.Type == keyspace.Int}
			if why := paramProblem(p.GoName); why != "" {
				c.errs.add(keyPos, "%s: placeholder {%s} becomes parameter %s, which %s; rename the placeholder", what, ph.Name, p.GoName, why)
				ok = false
				continue
			}
			if prev, dup := seen[p.GoName]; dup {
				c.errs.add(keyPos, "%s: placeholders {%s} and {%s} both become parameter %s", what, prev, ph.Name, p.GoName)
				ok = false
				continue
			}
			seen[p.GoName] = ph.Name
			params = append(params, p)
			c.params = append(c.params, paramUse{what: what, pos: keyPos, p: p})
		}
	}

	if !e.payload.Set {
		c.errs.add(e.name.Pos, "%s: missing payload", what)
		return goName, key, params, nil, false
	}
	tr, msg := parseTypeExpr(e.payload.Value)
	switch {
	case msg != "":
		c.errs.add(e.payload.Pos, "%s: payload %q %s", what, shorten(e.payload.Value), msg)
		ok = false
	case tr.Kind == Declared && c.types[tr.Name] == nil:
		c.errs.add(e.payload.Pos, "%s: payload %s is not declared under types", what, tr.Name)
		ok = false
	case tr.Kind != Declared && tr.Kind != External:
		c.errs.add(e.payload.Pos, "%s: payload %s must be a type declared under types or import/path.Type", what, tr)
		ok = false
	default:
		payload = tr
		c.noteImports(tr, e.payload.Pos)
	}
	return goName, key, params, payload, ok
}

// patternErrors splits the joined errors of keyspace.ParsePattern.
func patternErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (c *checker) queueDecl(qd *RawQueue, names map[string]string) *QueueSpec {
	goName, key, params, payload, ok := c.common(entry{"queue", qd.Name, qd.Key, qd.Payload, qd.Doc}, names)
	what := fmt.Sprintf("queue %q", qd.Name.Value)
	rel, relOK := c.delivery(qd, what)
	shards, shardsOK := c.shards(qd.Shards, what)
	layout, layoutOK := c.layout(qd.Layout, what)
	if layoutOK && layout == keyspace.Plain {
		if rel != nil {
			c.errs.add(qd.Layout.Pos, "%s: layout plain cannot be at-least-once: the scripts of an at-least-once queue touch all its keys at once, which on a cluster must share one hash tag, and plain keys have none (a value may even bring its own); use the tagged layout, or delivery: %s", what, atMostOnce)
			layoutOK = false
		}
		if shards > 1 {
			c.errs.add(qd.Layout.Pos, "%s: layout plain cannot have shards: %d: every shard but the first has a key of its own with a hash tag (queue:<i>:{…}), which is not a plain key, and the Python storage system has no shards; leave shards out or use the tagged layout", what, shards)
			layoutOK = false
		}
	}
	if !ok || !relOK || !shardsOK || !layoutOK {
		return nil
	}
	notes := c.notes(qd.Name.Pos, qd.Review, what, map[string]Scalar{
		"key": qd.Key, "payload": qd.Payload, "doc": qd.Doc, "delivery": qd.Delivery,
		"lease": qd.Lease, "max_deliveries": qd.MaxDeliveries, "dedupe_window": qd.DedupeWindow, "shards": qd.Shards, "layout": qd.Layout,
	})
	q := &QueueSpec{Name: qd.Name.Value, GoName: goName, VarName: "queue" + goName, Doc: qd.Doc.Value, Key: key, Params: params, Payload: payload, Reliable: rel, Shards: shards, Layout: layout, Review: notes}
	if rel != nil {
		q.DeliveryType, q.HandlerType = deliveryTypeName(goName), handlerTypeName(goName)
		for _, alias := range []string{q.DeliveryType, q.HandlerType} {
			if c.types[alias] != nil {
				c.errs.add(qd.Name.Pos, "%s: generated type %s, the queue's short name for its deliveries or handlers, is also declared under types (line %d); rename the type or the queue",
					what, alias, c.typePos[alias].Line)
				return nil
			}
		}
	}
	return q
}

// The delivery modes a queue can declare.
const (
	atMostOnce  = "at-most-once"
	atLeastOnce = "at-least-once"
)

// delivery checks a queue's delivery mode and the settings that go with it.
// It returns nil settings for an at-most-once queue.
func (c *checker) delivery(qd *RawQueue, what string) (*ReliableSettings, bool) {
	settings := []struct {
		name string
		s    Scalar
	}{{"lease", qd.Lease}, {"max_deliveries", qd.MaxDeliveries}, {"dedupe_window", qd.DedupeWindow}}
	switch qd.Delivery.Value {
	case "", atMostOnce:
		if qd.Delivery.Set && qd.Delivery.Value == "" {
			c.errs.add(qd.Delivery.Pos, "%s: delivery must be %s or %s", what, atMostOnce, atLeastOnce)
			return nil, false
		}
		ok := true
		for _, st := range settings {
			if st.s.Set {
				c.errs.add(st.s.Pos, "%s: %s applies only to delivery: %s queues", what, st.name, atLeastOnce)
				ok = false
			}
		}
		return nil, ok
	case atLeastOnce:
	default:
		c.errs.add(qd.Delivery.Pos, "%s: delivery %q must be %s or %s", what, qd.Delivery.Value, atMostOnce, atLeastOnce)
		return nil, false
	}
	r := &ReliableSettings{Lease: keyspace.DefaultLease, MaxDeliveries: keyspace.DefaultMaxDeliveries, DedupeWindow: keyspace.DefaultDedupeWindow}
	ok := true
	if qd.Lease.Set {
		d, dok := c.atLeastASecond(qd.Lease, what, "lease", "a consumer could not keep it while it works")
		r.Lease, ok = d, ok && dok
	}
	if qd.MaxDeliveries.Set {
		n, err := strconv.Atoi(qd.MaxDeliveries.Value)
		switch {
		case err != nil:
			c.errs.add(qd.MaxDeliveries.Pos, "%s: max_deliveries %q is not a whole number", what, qd.MaxDeliveries.Value)
			ok = false
		case n < 1:
			c.errs.add(qd.MaxDeliveries.Pos, "%s: max_deliveries %d must be at least 1", what, n)
			ok = false
		case n > math.MaxInt32:
			// The declaration holds an int, which is 32 bits on 386 and arm.
			c.errs.add(qd.MaxDeliveries.Pos, "%s: max_deliveries %d is over %d, the most a 32-bit int holds", what, n, math.MaxInt32)
			ok = false
		}
		r.MaxDeliveries = n
	}
	if qd.DedupeWindow.Set {
		d, dok := c.atLeastASecond(qd.DedupeWindow, what, "dedupe_window", "a retried push could be stored twice")
		r.DedupeWindow, ok = d, ok && dok
	}
	return r, ok
}

// shards checks a queue's shards: a whole number from 1 to
// keyspace.MaxShards; 1 when it is not set.
func (c *checker) shards(s Scalar, what string) (int, bool) {
	if !s.Set {
		return 1, true
	}
	n, err := strconv.Atoi(s.Value)
	switch {
	case err != nil:
		c.errs.add(s.Pos, "%s: shards %q is not a whole number", what, shorten(s.Value))
	case n < 1:
		c.errs.add(s.Pos, "%s: shards %d must be at least 1 (1 is an unsharded queue)", what, n)
	case n > keyspace.MaxShards:
		c.errs.add(s.Pos, "%s: shards %d is over %d, the most a queue may have", what, n, keyspace.MaxShards)
	default:
		return n, true
	}
	return 0, false
}

// layout checks a queue's or a cache's layout: tagged (also when it is
// not set) or plain.
func (c *checker) layout(s Scalar, what string) (keyspace.Layout, bool) {
	if !s.Set {
		return keyspace.Tagged, true
	}
	l, ok := keyspace.ParseLayout(s.Value)
	if !ok || s.Tag != "!!str" {
		c.errs.add(s.Pos, "%s: layout %q must be tagged (the default: escaped values, a queue's keys under one hash tag) or plain (values as they are, as the Python storage system writes its keys)", what, shorten(s.Value))
		return keyspace.Tagged, false
	}
	return l, true
}

// atLeastASecond parses a duration setting that must be 1s or more; why
// says what a shorter one would break.
func (c *checker) atLeastASecond(s Scalar, what, name, why string) (time.Duration, bool) {
	d, ok := c.duration(s, what, name)
	if ok && d < time.Second {
		c.errs.add(s.Pos, "%s: %s %s is under 1s; %s", what, name, s.Value, why)
		return d, false
	}
	return d, ok
}

// duration parses a positive, whole-millisecond Go duration.
func (c *checker) duration(s Scalar, what, name string) (time.Duration, bool) {
	d, err := time.ParseDuration(s.Value)
	switch {
	case err != nil:
		c.errs.add(s.Pos, "%s: %s %q is not a Go duration (like 90s, 1h30m)", what, name, s.Value)
		return 0, false
	case d <= 0:
		c.errs.add(s.Pos, "%s: %s %s must be positive", what, name, s.Value)
		return 0, false
	case d%time.Millisecond != 0:
		c.errs.add(s.Pos, "%s: %s %s is not a whole number of milliseconds", what, name, s.Value)
		return 0, false
	}
	return d, true
}

func (c *checker) cacheDecl(cd *RawCache, names map[string]string) *CacheSpec {
	goName, key, params, payload, ok := c.common(entry{"cache", cd.Name, cd.Key, cd.Payload, cd.Doc}, names)
	what := fmt.Sprintf("cache %q", cd.Name.Value)
	k := &CacheSpec{Name: cd.Name.Value, GoName: goName, VarName: "cache" + goName, Doc: cd.Doc.Value, Key: key, Params: params, Payload: payload,
		Review: c.notes(cd.Name.Pos, cd.Review, what, map[string]Scalar{"key": cd.Key, "payload": cd.Payload, "ttl": cd.TTL, "doc": cd.Doc, "local": cd.Local, "local_size": cd.LocalSize, "layout": cd.Layout})}
	layout, layoutOK := c.layout(cd.Layout, what)
	k.Layout, ok = layout, ok && layoutOK
	switch {
	case !cd.TTL.Set:
		c.errs.add(cd.Name.Pos, "%s: missing ttl (a duration such as 1h, or none to keep entries forever)", what)
		ok = false
	case cd.TTL.Value == "none":
		k.NoExpiry = true
	default:
		d, err := time.ParseDuration(cd.TTL.Value)
		switch {
		case err != nil:
			c.errs.add(cd.TTL.Pos, "%s: ttl %q is not a Go duration (like 90s, 1h30m) or none", what, cd.TTL.Value)
			ok = false
		case d <= 0:
			c.errs.add(cd.TTL.Pos, "%s: ttl %s must be positive; write none for no expiry", what, cd.TTL.Value)
			ok = false
		case d%time.Millisecond != 0:
			c.errs.add(cd.TTL.Pos, "%s: ttl %s is not a whole number of milliseconds", what, cd.TTL.Value)
			ok = false
		}
		k.TTL = d
	}
	local, lok := c.local(cd, what)
	k.Local, ok = local, ok && lok
	if !ok {
		return nil
	}
	return k
}

// local checks a cache's local and local_size and returns the entries it
// keeps in memory: 0 for a cache that is not local.
func (c *checker) local(cd *RawCache, what string) (int, bool) {
	if cd.Local.Set && (cd.Local.Tag != "!!bool" || (cd.Local.Value != "true" && cd.Local.Value != "false")) {
		c.errs.add(cd.Local.Pos, "%s: local must be true or false", what)
		return 0, false
	}
	if cd.Local.Value != "true" {
		if cd.LocalSize.Set {
			c.errs.add(cd.LocalSize.Pos, "%s: local_size applies only with local: true", what)
			return 0, false
		}
		return 0, true
	}
	if !cd.LocalSize.Set {
		return DefaultLocalSize, true
	}
	n, err := strconv.Atoi(cd.LocalSize.Value)
	switch {
	case err != nil || cd.LocalSize.Tag != "!!int":
		c.errs.add(cd.LocalSize.Pos, "%s: local_size %q is not a whole number", what, cd.LocalSize.Value)
		return 0, false
	case n < 1 || n > MaxLocalSize:
		c.errs.add(cd.LocalSize.Pos, "%s: local_size %d is outside 1..%d", what, n, MaxLocalSize)
		return 0, false
	}
	return n, true
}

// doc checks a doc text and returns it: text that reaches comments and
// the catalogue may not hide or reorder what a reviewer reads.
func (c *checker) doc(s Scalar, what string) string {
	if why := textProblem(s.Value); s.Set && why != "" {
		c.errs.add(s.Pos, "%s: doc %s", what, why)
	}
	return s.Value
}

// notes checks an entry's review keys and records where its keys stand.
func (c *checker) notes(pos Pos, r RawReview, what string, keys map[string]Scalar) Notes {
	n := Notes{Pos: pos, At: map[string]Pos{}}
	for k, s := range keys {
		if s.Set {
			n.At[k] = s.Pos
		}
	}
	if a := r.AllowBreaking; a.Set {
		n.At["allow_breaking"] = a.Pos
		if a.Tag != "!!str" || strings.TrimSpace(a.Value) == "" {
			c.errs.add(a.Pos, "%s: allow_breaking must be a quoted reason, such as \"old jobs were drained in the 2026-11 release\"", what)
		} else if why := textProblem(a.Value); why != "" {
			c.errs.add(a.Pos, "%s: allow_breaking %s", what, why)
		}
		n.AllowBreaking = a.Value
	}
	for _, id := range r.LintIgnore {
		if FindLintRule(id.Value) == nil {
			c.errs.add(id.Pos, "%s: lint_ignore names unknown rule %q (rules: %s)", what, id.Value, strings.Join(lintRuleIDs(), ", "))
			continue
		}
		n.LintIgnore = append(n.LintIgnore, id.Value)
	}
	return n
}

// importNames decides the name under which generated code imports each
// package of an external type, so that jennifer never has to rename one:
// the package's last path element (the one before a /vN major version),
// reduced to lower-case letters and digits, or pkg; then a number from 2
// on when that name is taken by another import, the runtime or time, a
// name generated accessors use (qs, cs, ds), a Go keyword or a
// predeclared identifier. Paths are named in sorted order, so the names
// do not depend on where in the schema a type is used first.
func (c *checker) importNames() map[string]string {
	paths := slices.Sorted(maps.Keys(c.importPaths))
	// init may not name an import: it is only ever a function.
	taken := map[string]bool{"runtime": true, "time": true, "qs": true, "cs": true, "ds": true, "init": true}
	names := make(map[string]string, len(paths))
	for _, p := range paths {
		base := packageName(p)
		name := base
		for n := 2; taken[name] || token.IsKeyword(name) || predeclared[name] || jen.IsReservedWord(name); n++ {
			name = base + strconv.Itoa(n)
		}
		taken[name] = true
		names[p] = name
	}
	return names
}

// checkParams reports parameters that would shadow an imported package or
// a declaration variable inside an accessor.
func (c *checker) checkParams(m *Model) {
	vars := map[string]bool{}
	for _, q := range m.Queues {
		vars[q.VarName] = true
	}
	for _, k := range m.Caches {
		vars[k.VarName] = true
	}
	importOf := map[string]string{}
	for path, name := range m.Imports {
		importOf[name] = path
	}
	for _, u := range c.params {
		if path, ok := importOf[u.p.GoName]; ok {
			c.errs.add(u.pos, "%s: placeholder {%s} becomes parameter %s, which hides the package of %s; rename the placeholder", u.what, u.p.Name, u.p.GoName, path)
		}
		if vars[u.p.GoName] {
			c.errs.add(u.pos, "%s: placeholder {%s} becomes parameter %s, which is the name of a generated variable; rename the placeholder", u.what, u.p.Name, u.p.GoName)
		}
	}
}

// keyed is a queue or cache whose keys are compared with the others of its
// kind.
type keyed struct {
	what string
	pos  Pos // of its key pattern, or of its name when the key is the name
	keys keyspace.KeySet
}

// disjointKeys reports two queues, or two caches, that can have the same
// key, with an example key and the arguments that give it through each:
// a Set through one would be read through the other. A queue never shares
// a key with a cache: after the prefix, one's keys begin with "queue:"
// and the other's with "cache:". Two tagged queues' keys also differ in
// full when their expanded patterns do, whatever part suffix follows: the
// pattern sits between braces, and neither its literal text nor an escaped
// value ever holds a raw brace, so the first "}" ends it. A plain
// declaration's values may hold anything but control bytes (braces,
// separators, ":dead"), so it is compared by every key of both, its
// dead-letter list and the other's parts and shards included
// (keyspace.OverlapKeys).
func (c *checker) disjointKeys(m *Model) {
	var queues, caches []keyed
	for _, q := range m.Queues {
		queues = append(queues, keyed{fmt.Sprintf("queue %q", q.Name), q.Review.PosOf("key"), q.KeySet()})
	}
	for _, k := range m.Caches {
		caches = append(caches, keyed{fmt.Sprintf("cache %q", k.Name), k.Review.PosOf("key"), k.KeySet()})
	}
	budget := keySearchSteps
	c.disjoint(queues, &budget, m.Prefix)
	c.disjoint(caches, &budget, m.Prefix)
}

// disjoint compares every pair of entries, spending at most *budget
// search steps in all; when they run out, the entry being compared gets
// an error that names the limit, and the comparison stops.
func (c *checker) disjoint(entries []keyed, budget *int, prefix string) {
	for j, b := range entries {
		if *budget < 0 {
			return // the queues spent it, and said so
		}
		for _, a := range entries[:j] {
			match, used := keyspace.OverlapKeys(a.keys, b.keys, *budget)
			if *budget -= used; *budget < 0 {
				c.errs.add(b.pos, "%s: proving that its keys differ from those of the %d entries before it took over %d search steps, the limit; key patterns this alike cannot be compared in reasonable time, so give each a distinct literal word before its first placeholder",
					b.what, j, keySearchSteps)
				return
			}
			if match == nil {
				continue
			}
			if a.keys.Layout == keyspace.Tagged && b.keys.Layout == keyspace.Tagged {
				c.errs.add(b.pos, "%s: key pattern %q can give the same key as %s's %q at line %d, column %d: %s, %s here and %s there; a value written through one would be read through the other, so make their literal text differ (such as a different word before the first placeholder)",
					b.what, b.keys.Pattern, a.what, a.keys.Pattern, a.pos.Line, a.pos.Col, prefix+match.Key, argsText(b.keys.Pattern, match.B), argsText(a.keys.Pattern, match.A))
			} else {
				c.errs.add(b.pos, "%s: key pattern %q (layout %s) can give the same key as %s's %q (layout %s) at line %d, column %d: %s, %s here and %s there; plain values are inserted as they are (separators, braces and all), so a value written through one would be read through the other: make their literal text differ (such as a different word before the first placeholder), and begin a plain pattern with literal text",
					b.what, b.keys.Pattern, b.keys.Layout, a.what, a.keys.Pattern, a.keys.Layout, a.pos.Line, a.pos.Col, prefix+match.Key, argsText(b.keys.Pattern, match.B), argsText(a.keys.Pattern, match.A))
			}
			break
		}
	}
}

// argsText writes the arguments of an example, as {id}="settings:x",
// {n}=42, and the part of the queue it gives when that is not the list
// itself.
func argsText(p *keyspace.Pattern, ex keyspace.Example) string {
	text := "with no arguments"
	if len(ex.Args) > 0 {
		parts := make([]string, len(ex.Args))
		for i, ph := range p.Placeholders() {
			if s, ok := ex.Args[i].(string); ok {
				parts[i] = fmt.Sprintf("{%s}=%q", ph.Name, s)
			} else {
				parts[i] = fmt.Sprintf("{%s}=%v", ph.Name, ex.Args[i])
			}
		}
		text = strings.Join(parts, ", ")
	}
	if ex.Part != "" {
		text += " (its " + ex.Part + " key)"
	}
	return text
}

// shorten cuts text quoted in a message to 80 bytes, at a rune boundary.
func shorten(s string) string {
	if len(s) <= 80 {
		return s
	}
	i := 80
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
