// Package gen turns a storagegen schema into Go source, in three stages
// that each do one thing:
//
//	Parse     YAML → RawSchema: the schema as written, every value with its line and column
//	Check     RawSchema → Model: every rule checked, every Go name decided
//	Generate  Model → map[file name][]byte: gofmt'd Go, emitted with jennifer
//
// The Python client takes two more stages from the checked Model:
//
//	PythonModel     Model → PyModel: every Python name decided, what has no Python form refused
//	GeneratePython  PyModel → map[file name][]byte: the package's modules, its
//	                hand-written runtime (python/*.py) and the runtime's Lua scripts
//
// The parse tree's types are named Raw* (RawSchema, RawQueue, …) and the
// checked model's *Spec (QueueSpec, CacheSpec, TypeSpec), so that neither
// reads like the runtime's Queue, Cache or QueueDecl, which the generated
// code uses. Key patterns, the key layout and the defaults come from
// internal/keyspace, which the runtime shares; gen does not import the
// runtime, so the generator does not link go-redis.
//
// Nothing here touches the disk; cmd/storagegen reads the schema and writes
// the files. Every stage reports all of its problems at once as an
// ErrorList of "schema.yaml:LINE:COL: message" lines.
package gen

import "errors"

// Load parses and checks a schema, returning the problems of both stages
// together, sorted. When the YAML itself is unreadable it stops after
// parsing.
func Load(filename string, src []byte, opts CheckOptions) (*Model, error) {
	f, perr := Parse(filename, src)
	if f == nil {
		return nil, perr
	}
	m, cerr := Check(f, opts)
	if perr == nil {
		return m, cerr
	}
	var parsed, checked ErrorList
	errors.As(perr, &parsed)
	errors.As(cerr, &checked)
	all := errs{file: filename, list: append(parsed, checked...)}
	return nil, all.err()
}
