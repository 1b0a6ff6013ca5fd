package gen

import (
	"time"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// Model is a checked schema with every Go name decided. Generate reads it
// and computes nothing but code.
type Model struct {
	Schema  string // the schema file's base name, for the header
	Package string // Go package name of the generated code
	Prefix  string // prepended to every key
	Types   []*TypeSpec
	Queues  []*QueueSpec
	Caches  []*CacheSpec

	// Imports maps the import path of every package that an external type
	// comes from to the name generated code uses for it, decided by Check;
	// generated files import each under that name.
	Imports map[string]string

	// Review is what storagegen diff and lint read about the file as a
	// whole: Pos is that of the prefix (1:1 when unset), At has the
	// types, queues and caches keys.
	Review Notes
}

// Notes are what schema review (storagegen diff and lint) reads about an
// entry beside its meaning: where it and its keys stand, and its
// allow_breaking and lint_ignore.
type Notes struct {
	Pos           Pos            // the entry's name
	At            map[string]Pos // each key of the entry that is set, by its schema name
	AllowBreaking string
	LintIgnore    []string
}

// PosOf returns the position of the entry's key, or of the entry when that
// key is not set.
func (n *Notes) PosOf(key string) Pos {
	if p, ok := n.At[key]; ok {
		return p
	}
	return n.Pos
}

// Ignores reports whether lint rule id is ignored for the entry.
func (n *Notes) Ignores(id string) bool {
	for _, x := range n.LintIgnore {
		if x == id {
			return true
		}
	}
	return false
}

// TypeSpec is a checked payload struct, declared under types.
type TypeSpec struct {
	Name   string // schema name, also its Go name
	Doc    string
	Fields []*FieldSpec
	Review Notes
}

// FieldSpec is one field of a TypeSpec.
type FieldSpec struct {
	Name     string // schema name, also the JSON member name
	GoName   string
	Type     *TypeRef
	Optional bool // omitted from JSON when zero
	Doc      string
	Pos      Pos // of its name
}

// TypeKind tells what a TypeRef refers to.
type TypeKind int

// The kinds of field and payload types.
const (
	Builtin  TypeKind = iota // bool, string, int…, float64, any
	Bytes                    // []byte
	Time                     // time.Time
	Slice                    // []Elem
	Map                      // map[string]Elem
	Declared                 // a type under types
	External                 // import/path.Name
)

// TypeRef is a field or payload type.
type TypeRef struct {
	Kind TypeKind
	Name string   // Builtin: the Go name; Declared, External: the type name
	Path string   // External: the import path
	Elem *TypeRef // Slice, Map
}

// String returns the type as the schema writes it.
func (t *TypeRef) String() string {
	switch t.Kind {
	case Bytes:
		return "[]byte"
	case Time:
		return "time.Time"
	case Slice:
		return "[]" + t.Elem.String()
	case Map:
		return "map[string]" + t.Elem.String()
	case External:
		return t.Path + "." + t.Name
	}
	return t.Name
}

// Param is a key pattern placeholder, which becomes an accessor parameter.
type Param struct {
	Name   string // schema name
	GoName string // parameter name
	Int    bool   // {name:int}: an int parameter; otherwise a string
}

// QueueSpec is a checked queue.
type QueueSpec struct {
	Name    string // schema name
	GoName  string // accessor name
	VarName string // name of its runtime.QueueDecl variable
	Doc     string
	Key     *keyspace.Pattern // parsed once, by Check
	Params  []*Param
	Payload *TypeRef

	// Reliable is set for delivery: at-least-once queues, whose accessor
	// returns a runtime.ReliableQueue.
	Reliable *ReliableSettings
	// DeliveryType and HandlerType name the generated aliases of
	// runtime.Delivery[Payload] and runtime.Handler[Payload]; set for
	// at-least-once queues only.
	DeliveryType, HandlerType string

	// Shards is how many lists the queue is spread over (shards: N), 1 to
	// keyspace.MaxShards; 1 is an unsharded queue.
	Shards int

	// Layout is how its placeholder values become its keys (layout:
	// tagged or plain); plain only on an unsharded at-most-once queue.
	Layout keyspace.Layout

	Review Notes
}

// ReliableSettings are the settings of an at-least-once queue, defaults
// applied.
type ReliableSettings struct {
	Lease         time.Duration
	MaxDeliveries int
	DedupeWindow  time.Duration
}

// KeySet is every key of q, for comparing it with other queues.
func (q *QueueSpec) KeySet() keyspace.KeySet {
	return keyspace.KeySet{Queue: true, Pattern: q.Key, Layout: q.Layout, Reliable: q.Reliable != nil, Shards: q.Shards}
}

// KeyOf returns the key of the queue whose pattern expands to name under
// prefix (shard 0's, for a sharded queue).
func (q *QueueSpec) KeyOf(prefix, name string) string {
	return keyspace.QueueKeyOf(q.Layout, prefix, name)
}

// CacheSpec is a checked cache.
type CacheSpec struct {
	Name     string
	GoName   string
	VarName  string
	Doc      string
	Key      *keyspace.Pattern
	Params   []*Param
	Payload  *TypeRef
	TTL      time.Duration // when !NoExpiry
	NoExpiry bool          // ttl: none
	Local    int           // entries kept in each process's memory (local: true); 0: none
	Layout   keyspace.Layout
	Review   Notes
}

// KeySet is every key of c, for comparing it with other caches.
func (c *CacheSpec) KeySet() keyspace.KeySet {
	return keyspace.KeySet{Pattern: c.Key, Layout: c.Layout}
}
