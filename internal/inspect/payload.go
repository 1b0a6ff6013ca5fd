package inspect

import (
	"reflect"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/runtime"
)

// maxTypeDepth is how many times a type that contains itself (through a
// slice or a map, the only way the schema allows) is unrolled into a Go
// type; values nested deeper than that inside it are checked as JSON only.
const maxTypeDepth = 16

// builtins are the Go types of the schema's builtin type names.
var builtins = map[string]reflect.Type{
	"bool": reflect.TypeFor[bool](), "string": reflect.TypeFor[string](),
	"int": reflect.TypeFor[int](), "int32": reflect.TypeFor[int32](), "int64": reflect.TypeFor[int64](),
	"uint32": reflect.TypeFor[uint32](), "uint64": reflect.TypeFor[uint64](),
	"float32": reflect.TypeFor[float32](), "float64": reflect.TypeFor[float64](),
	"any": reflect.TypeFor[any](),
}

// typeBuilder makes the Go types of a schema's payload types with reflect,
// as the generated code declares them: a struct per declared type with
// the generated field names and json tags (name, omitzero when optional),
// so that decoding into one is what a generated consumer does.
type typeBuilder struct {
	types map[string]*gen.TypeSpec
	made  map[typeAt]reflect.Type
	// external is set when a type reached a Go type of another module
	// (import/path.Name), which is checked as JSON only.
	external bool
}

type typeAt struct {
	name  string
	depth int
}

func newTypeBuilder(m *gen.Model) *typeBuilder {
	b := &typeBuilder{types: map[string]*gen.TypeSpec{}, made: map[typeAt]reflect.Type{}}
	for _, t := range m.Types {
		b.types[t.Name] = t
	}
	return b
}

// of returns the Go type of t, and whether any part of it is checked as
// JSON only (an external type).
func (b *typeBuilder) of(t *gen.TypeRef) (reflect.Type, bool) {
	b.external = false
	rt := b.build(t, map[string]int{})
	return rt, b.external
}

func (b *typeBuilder) build(t *gen.TypeRef, open map[string]int) reflect.Type {
	switch t.Kind {
	case gen.Builtin:
		if rt, ok := builtins[t.Name]; ok {
			return rt
		}
	case gen.Bytes:
		return reflect.TypeFor[[]byte]()
	case gen.Time:
		return reflect.TypeFor[time.Time]()
	case gen.Slice:
		return reflect.SliceOf(b.build(t.Elem, open))
	case gen.Map:
		return reflect.MapOf(reflect.TypeFor[string](), b.build(t.Elem, open))
	case gen.Declared:
		return b.declared(t.Name, open)
	}
	b.external = true
	return reflect.TypeFor[jsontext.Value]()
}

// declared makes the struct of the declared type name; open counts the
// declared types being made on the way to it, so that a type that
// contains itself is unrolled maxTypeDepth times and then checked as
// JSON.
func (b *typeBuilder) declared(name string, open map[string]int) reflect.Type {
	depth := open[name]
	if depth >= maxTypeDepth {
		return reflect.TypeFor[jsontext.Value]()
	}
	key := typeAt{name, depth}
	if rt, ok := b.made[key]; ok {
		return rt
	}
	spec := b.types[name]
	if spec == nil {
		b.external = true
		return reflect.TypeFor[jsontext.Value]()
	}
	open[name]++
	defer func() { open[name]-- }()
	fields := make([]reflect.StructField, 0, len(spec.Fields))
	for _, f := range spec.Fields {
		tag := f.Name
		if f.Optional {
			tag += ",omitzero"
		}
		fields = append(fields, reflect.StructField{Name: f.GoName, Type: b.build(f.Type, open), Tag: reflect.StructTag(`json:"` + tag + `"`)})
	}
	rt := reflect.StructOf(fields)
	b.made[key] = rt
	return rt
}

// checker decodes payloads as a declaration's payload type.
type checker struct {
	name     string       // the schema's name of the type, for errors
	typ      reflect.Type // its Go form
	jsonOnly bool         // some part is an external type: checked as JSON only
}

// check decodes data as the payload type; its error names the failing
// field, never a value.
func (c *checker) check(data []byte) error {
	return runtime.DecodeAs(data, reflect.New(c.typ).Interface(), c.name)
}
