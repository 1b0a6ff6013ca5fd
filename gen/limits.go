package gen

import "go.yaml.in/yaml/v3"

// A schema is small; the work to check and generate it must stay small
// too, whatever the file holds. These limits are far above what a real
// schema needs (2,000 declarations use a fraction of each, see the
// README's Limits of the schema), and each is reported at a position with
// its value.
const (
	// MaxSchemaBytes bounds the schema file.
	MaxSchemaBytes = 1 << 20
	// MaxYAMLNodes bounds the YAML nodes the checker reads, each alias
	// counted as the nodes it stands for: aliases can make a few
	// kilobytes stand for gigabytes.
	MaxYAMLNodes = 200_000
	// MaxTypeDepth bounds how deeply []T and map[string]T nest in one type
	// expression.
	MaxTypeDepth = 32
	// MaxEntries bounds the queues and caches together, and MaxTypes the
	// types: each one is Go code to compile and keys to compare.
	MaxEntries = 5_000
	MaxTypes   = 5_000
	// MaxFields bounds the fields of all types together.
	MaxFields = 50_000
	// MaxKeyPatternBytes bounds a key pattern: keys are compared pairwise
	// (see keyspace.Overlap), at a cost that grows with their length.
	MaxKeyPatternBytes = 256
	// MaxKeySearchSteps bounds the work of proving that no two queues,
	// and no two caches, share a key (keyspace.OverlapWithin), summed
	// over all pairs: most pairs are told apart by their literal text
	// at no cost, but patterns crafted to look alike could each need a
	// search. 10 million steps take a few seconds.
	MaxKeySearchSteps = 10_000_000
	// DefaultLocalSize is a local cache's size without local_size, and
	// MaxLocalSize the largest local_size: the runtime's bound on one
	// local cache.
	DefaultLocalSize = 10_000
	MaxLocalSize     = 1_000_000
)

// keySearchSteps is MaxKeySearchSteps, lowered by a test.
var keySearchSteps = MaxKeySearchSteps

// countNodes walks the YAML tree under n as the parser will, each alias
// standing for what it refers to, and returns false and a position when
// the count passes MaxYAMLNodes: that of the outermost alias being
// expanded, or of the node itself. An alias to a node that contains it
// would never end; it counts as over the limit.
func countNodes(n *yaml.Node) (Pos, bool) {
	count := 0
	open := map[*yaml.Node]bool{}
	var walk func(n, alias *yaml.Node) (Pos, bool)
	walk = func(n, alias *yaml.Node) (Pos, bool) {
		if alias == nil && n.Kind == yaml.AliasNode {
			alias = n
		}
		if count++; count > MaxYAMLNodes || open[n] {
			if alias != nil {
				return nodePos(alias), false
			}
			return nodePos(n), false
		}
		open[n] = true
		defer delete(open, n)
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return walk(n.Alias, alias)
		}
		for _, c := range n.Content {
			if pos, ok := walk(c, alias); !ok {
				return pos, false
			}
		}
		return Pos{}, true
	}
	return walk(n, nil)
}

// checkSize reports a schema with more declarations than the limits allow,
// at the first one over, and whether it is within them; the checker stops
// there, so that such a schema costs no more.
func (c *checker) checkSize(f *RawSchema) bool {
	ok := true
	var entries []Scalar
	for _, q := range f.Queues {
		entries = append(entries, q.Name)
	}
	for _, k := range f.Caches {
		entries = append(entries, k.Name)
	}
	if len(entries) > MaxEntries {
		sortByPos(entries, func(s Scalar) Pos { return s.Pos })
		c.errs.add(entries[MaxEntries].Pos, "schema declares %d queues and caches, over the limit of %d", len(entries), MaxEntries)
		ok = false
	}
	if len(f.Types) > MaxTypes {
		c.errs.add(f.Types[MaxTypes].Name.Pos, "schema declares %d types, over the limit of %d", len(f.Types), MaxTypes)
		ok = false
	}
	fields := 0
	for _, t := range f.Types {
		if fields+len(t.Fields) > MaxFields {
			c.errs.add(t.Fields[MaxFields-fields].Name.Pos, "schema declares more than %d fields in all, the limit", MaxFields)
			return false
		}
		fields += len(t.Fields)
	}
	return ok
}
