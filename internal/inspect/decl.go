package inspect

import (
	"strconv"
	"strings"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/runtime"
)

// Kind is what a declaration declares.
type Kind string

// The kinds of declarations.
const (
	KindQueue Kind = "queue"
	KindCache Kind = "cache"
)

// Param is a placeholder of a declaration's key pattern.
type Param struct {
	Name string `json:"name"`
	Type string `json:"type"` // "string" or "int"
}

// Decl is one declaration of the schema as the inspector uses it.
type Decl struct {
	Kind     Kind    `json:"kind"`
	Name     string  `json:"name"`
	Key      string  `json:"key"`                // its key with placeholders written <name>, as the catalogue shows it
	Layout   string  `json:"layout"`             // tagged or plain
	Delivery string  `json:"delivery,omitempty"` // a queue's: at-most-once or at-least-once
	Shards   int     `json:"shards,omitempty"`   // a queue's; 1 when unsharded
	Payload  string  `json:"payload"`            // the payload type as the schema writes it
	Params   []Param `json:"params"`
	// A cache's TTL (0 with NoExpiry for ttl: none); an at-least-once
	// queue's lease and max deliveries.
	TTL           Duration `json:"ttl_ms,omitempty"`
	NoExpiry      bool     `json:"no_expiry,omitempty"`
	Lease         Duration `json:"lease_ms,omitempty"`
	MaxDeliveries int      `json:"max_deliveries,omitempty"`

	prefix   string
	pattern  *keyspace.Pattern
	layout   keyspace.Layout
	reliable bool
	queue    *runtime.QueueDecl
	cache    *runtime.CacheDecl
	payload  *checker
}

// Reliable reports an at-least-once queue.
func (d *Decl) Reliable() bool { return d.reliable }

func queueDecl(prefix string, q *gen.QueueSpec) *Decl {
	d := &Decl{Kind: KindQueue, Name: q.Name, Layout: q.Layout.String(), Delivery: "at-most-once",
		Shards: max(q.Shards, 1), Payload: q.Payload.String(), Params: params(q.Key),
		prefix: prefix, pattern: q.Key, layout: q.Layout}
	d.Key = q.KeyOf(prefix, q.Key.Template())
	d.queue = &runtime.QueueDecl{Name: q.Name, Prefix: prefix, Key: q.Key, Layout: q.Layout, Shards: q.Shards}
	if r := q.Reliable; r != nil {
		d.reliable = true
		d.Delivery = "at-least-once"
		d.Lease, d.MaxDeliveries = Duration(r.Lease), r.MaxDeliveries
		d.queue.Lease, d.queue.MaxDeliveries, d.queue.DedupeWindow = r.Lease, r.MaxDeliveries, r.DedupeWindow
	}
	return d
}

func cacheDecl(prefix string, c *gen.CacheSpec) *Decl {
	d := &Decl{Kind: KindCache, Name: c.Name, Layout: c.Layout.String(), Payload: c.Payload.String(),
		Params: params(c.Key), prefix: prefix, pattern: c.Key, layout: c.Layout}
	d.Key = keyspace.CacheKey(prefix, c.Key.Template())
	ttl := c.TTL
	if c.NoExpiry {
		ttl = runtime.NoExpiry
		d.NoExpiry = true
	} else {
		d.TTL = Duration(c.TTL)
	}
	d.cache = &runtime.CacheDecl{Name: c.Name, Prefix: prefix, Key: c.Key, Layout: c.Layout, TTL: ttl}
	return d
}

func params(p *keyspace.Pattern) []Param {
	out := []Param{}
	for _, ph := range p.Placeholders() {
		out = append(out, Param{Name: ph.Name, Type: ph.Type.String()})
	}
	return out
}

// glob returns the SCAN MATCH glob of every key of d whose placeholders
// in f have those values: for a queue, every key of every shard (the
// queue's list and its parts, markers and receipts, which an instance may
// have without the list: Redis deletes an empty list), for a cache the
// entries.
func (d *Decl) glob(f Filter) (string, error) {
	g, err := d.pattern.Glob(d.layout, f)
	if err != nil {
		return "", err
	}
	p := keyspace.GlobEscape(d.prefix)
	switch {
	case d.Kind == KindCache:
		return p + "cache:" + g, nil
	case d.layout == keyspace.Plain:
		return p + "queue:" + g + "*", nil
	case d.Shards > 1:
		// queue:{name}… and queue:<i>:{name#<i>}…
		return p + "queue:*{" + g + "*", nil
	}
	return p + "queue:{" + g + "}*", nil
}

// reliableSuffixes are what may follow an at-least-once queue's key: its
// parts, its pause key, its meta hash (push times and trace contexts);
// markers and receipts are matched by their infix.
var reliableSuffixes = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range keyspace.ReliableParts {
		m[p.Suffix] = true
	}
	m[keyspace.PausedPart.Suffix] = true
	m[keyspace.MetaPart.Suffix] = true
	return m
}()

// instanceKey is what a key says about the instance it belongs to.
type instanceKey struct {
	name      string // the pattern's expansion: the instance's identity
	args      []any
	ambiguous bool // a plain key with more than one split into values
}

// parse returns the instances of d that key is a key of: none when it is
// not d's, else one.
func (d *Decl) parse(key string) []instanceKey {
	rest, ok := strings.CutPrefix(key, d.prefix)
	if !ok {
		return nil
	}
	if d.Kind == KindCache {
		rest, ok = strings.CutPrefix(rest, "cache:")
		if !ok {
			return nil
		}
		if ik, ok := d.parseName(rest); ok {
			return []instanceKey{ik}
		}
		return nil
	}
	rest, ok = strings.CutPrefix(rest, "queue:")
	if !ok {
		return nil
	}
	if d.layout == keyspace.Plain {
		// A key ending in :dead is taken for the dead letters of the
		// expansion before it when that parses, else for a queue whose
		// expansion ends so.
		if name, ok := strings.CutSuffix(rest, keyspace.QueueParts[1].Suffix); ok {
			if ik, ok := d.parseName(name); ok {
				return []instanceKey{ik}
			}
		}
		if ik, ok := d.parseName(rest); ok {
			return []instanceKey{ik}
		}
		return nil
	}
	shard := 0
	if !strings.HasPrefix(rest, "{") {
		num, after, ok := strings.Cut(rest, ":")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 1 || strconv.Itoa(i) != num || i >= d.Shards {
			return nil
		}
		shard, rest = i, after
	}
	rest, ok = strings.CutPrefix(rest, "{")
	if !ok {
		return nil
	}
	// A tagged expansion holds no raw brace: its tag ends at the first.
	name, suffix, ok := strings.Cut(rest, "}")
	if !ok {
		return nil
	}
	if shard > 0 {
		if name, ok = strings.CutSuffix(name, "#"+strconv.Itoa(shard)); !ok {
			return nil
		}
	}
	if !d.suffixOK(suffix) {
		return nil
	}
	if ik, ok := d.parseName(name); ok {
		return []instanceKey{ik}
	}
	return nil
}

func (d *Decl) suffixOK(s string) bool {
	if !d.reliable {
		return s == "" || s == keyspace.QueueParts[1].Suffix
	}
	if reliableSuffixes[s] {
		return true
	}
	for _, infix := range []string{":id:", ":rx:"} {
		if id, ok := strings.CutPrefix(s, infix); ok && id != "" {
			return true
		}
	}
	return false
}

// parseName parses an expansion of d's pattern back into arguments.
func (d *Decl) parseName(name string) (instanceKey, bool) {
	if d.layout == keyspace.Plain {
		args, amb, err := d.pattern.ParsePlain(name)
		return instanceKey{name: name, args: args, ambiguous: amb}, err == nil
	}
	args, err := d.pattern.Parse(name)
	return instanceKey{name: name, args: args}, err == nil
}

// matches reports whether the instance's arguments have the values f fixes.
func (d *Decl) matches(ik instanceKey, f Filter) bool {
	for i, p := range d.Params {
		if v, ok := f[p.Name]; ok && v != ik.args[i] {
			return false
		}
	}
	return true
}

// Arg is one argument of an instance, parsed back from its key.
type Arg struct {
	Name  string `json:"name"`
	Value any    `json:"value"` // a string or an int
}

func (d *Decl) argList(args []any) []Arg {
	out := make([]Arg, len(args))
	for i, a := range args {
		out[i] = Arg{Name: d.Params[i].Name, Value: a}
	}
	return out
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err
}
