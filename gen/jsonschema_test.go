package gen

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/storagegen/storagegen/internal/txtar"
)

// compileJSONSchema compiles JSONSchema() with a validator of its own
// (github.com/santhosh-tekuri/jsonschema/v6, in tests only).
func compileJSONSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("storagegen.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("storagegen.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// validateYAML validates a schema.yaml as an editor does: YAML read into
// JSON values, checked against the JSON Schema.
func validateYAML(t *testing.T, sch *jsonschema.Schema, src []byte) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

// TestJSONSchemaAcceptsValidSchemas: the repository's schema.yaml and the
// schema of every golden scenario that checks are valid.
func TestJSONSchemaAcceptsValidSchemas(t *testing.T) {
	sch := compileJSONSchema(t)
	src, err := os.ReadFile("../schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := validateYAML(t, sch, src); err != nil {
		t.Errorf("schema.yaml: %v", err)
	}
	n := 0
	for _, path := range scenarios(t) {
		data, _ := os.ReadFile(path)
		a := txtar.Parse(data)
		if _, failing := a.Get("stderr"); failing {
			continue
		}
		schema, _ := a.Get("schema.yaml")
		if err := validateYAML(t, sch, schema); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		n++
	}
	if n < 5 {
		t.Errorf("only %d scenarios validated", n)
	}
}

// TestJSONSchemaRejectsShapeErrors: schemas that the checker rejects for
// their shape are rejected by the JSON Schema too, so an editor flags them
// as they are typed.
func TestJSONSchemaRejectsShapeErrors(t *testing.T) {
	sch := compileJSONSchema(t)
	const ok = "version: 1\ntypes:\n  T:\n    fields:\n      a: string\n"
	for _, tc := range []struct{ name, src string }{
		{"missing version", "types: {}\n"},
		{"wrong version", "version: 2\n"},
		{"unknown top key", "version: 1\nqueue: {}\n"},
		{"prefix with a brace", "version: 1\nprefix: \"a{\"\n"},
		{"prefix with a space", "version: 1\nprefix: \"a b\"\n"},
		{"bad package", "version: 1\npackage: Generated\n"},
		{"type without fields", "version: 1\ntypes:\n  T: {doc: x}\n"},
		{"type with no field", "version: 1\ntypes:\n  T: {fields: {}}\n"},
		{"type name case", "version: 1\ntypes:\n  node_message: {fields: {a: string}}\n"},
		{"field name case", "version: 1\ntypes:\n  T: {fields: {NodeId: string}}\n"},
		{"unknown field key", "version: 1\ntypes:\n  T: {fields: {a: {type: string, required: true}}}\n"},
		{"optional not a bool", ok + "      b: {type: string, optional: yes please}\n"},
		{"fields as a list", "version: 1\ntypes:\n  T:\n    fields: [a, b]\n"},
		{"queue without payload", ok + "queues:\n  q: {key: q}\n"},
		{"queue name case", ok + "queues:\n  Jobs: {payload: T}\n"},
		{"unknown queue key", ok + "queues:\n  q: {payload: T, ttl: 1h}\n"},
		{"bad delivery", ok + "queues:\n  q: {payload: T, delivery: exactly-once}\n"},
		{"lease on at-most-once", ok + "queues:\n  q: {payload: T, lease: 30s}\n"},
		{"lease not a duration", ok + "queues:\n  q: {payload: T, delivery: at-least-once, lease: soon}\n"},
		{"max_deliveries zero", ok + "queues:\n  q: {payload: T, delivery: at-least-once, max_deliveries: 0}\n"},
		{"local not a bool", ok + "caches:\n  c: {payload: T, ttl: 1h, local: 1}\n"},
		{"local_size without local", ok + "caches:\n  c: {payload: T, ttl: 1h, local_size: 10}\n"},
		{"local_size too large", ok + "caches:\n  c: {payload: T, ttl: 1h, local: true, local_size: 1000001}\n"},
		{"local on a queue", ok + "queues:\n  q: {payload: T, local: true}\n"},
		{"cache without ttl", ok + "caches:\n  c: {payload: T}\n"},
		{"ttl not a duration", ok + "caches:\n  c: {payload: T, ttl: forever}\n"},
		{"empty allow_breaking", ok + "caches:\n  c: {payload: T, ttl: 1h, allow_breaking: \"  \"}\n"},
		{"unknown lint rule", ok + "caches:\n  c: {payload: T, ttl: 1h, lint_ignore: [no-such-rule]}\n"},
		{"lint_ignore not a list", "version: 1\nlint_ignore: empty-prefix\n"},
		{"unknown layout", ok + "queues:\n  q: {payload: T, layout: escaped}\n"},
		{"cache layout not a string", ok + "caches:\n  c: {payload: T, ttl: 1h, layout: 1}\n"},
		{"plain at-least-once", ok + "queues:\n  q: {payload: T, key: \"q_{id}\", layout: plain, delivery: at-least-once}\n"},
		{"plain sharded", ok + "queues:\n  q: {payload: T, key: \"q_{id}\", layout: plain, shards: 2}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load("schema.yaml", []byte(tc.src), CheckOptions{DefaultPackage: "out"}); err == nil {
				t.Fatalf("the checker accepts it; the case is wrong")
			}
			if err := validateYAML(t, sch, []byte(tc.src)); err == nil {
				t.Errorf("the JSON Schema accepts what the checker rejects:\n%s", tc.src)
			}
		})
	}
}

// TestJSONSchemaMatchesParser: every mapping of the JSON Schema has exactly
// the keys the parser knows, which the parser lists when it meets an
// unknown one.
func TestJSONSchemaMatchesParser(t *testing.T) {
	root := jsonSchema()
	defs := root["$defs"].(obj)
	props := func(o obj) []string {
		var keys []string
		for k := range o["properties"].(obj) {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	fieldObj := defs["field"].(obj)["oneOf"].([]obj)[1]
	known := regexp.MustCompile(`\(known: ([^)]*)\)`)
	for _, tc := range []struct {
		name, src string
		schema    obj
	}{
		{"top", "version: 1\nzzz: 1\n", root},
		{"type", "version: 1\ntypes:\n  T: {fields: {a: string}, zzz: 1}\n", defs["type"].(obj)},
		{"field", "version: 1\ntypes:\n  T: {fields: {a: {type: string, zzz: 1}}}\n", fieldObj},
		{"queue", "version: 1\nqueues:\n  q: {payload: x.com/y.T, zzz: 1}\n", defs["queue"].(obj)},
		{"cache", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, zzz: 1}\n", defs["cache"].(obj)},
	} {
		_, err := Parse("schema.yaml", []byte(tc.src))
		m := known.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("%s: no list of known keys in %q", tc.name, err)
		}
		parser := strings.Split(m[1], ", ")
		slices.Sort(parser)
		if !slices.Equal(parser, props(tc.schema)) {
			t.Errorf("%s: the parser knows %v, the JSON Schema %v", tc.name, parser, props(tc.schema))
		}
	}
}

// TestReviewFilesUpToDate: the committed catalogue and JSON Schema are
// what the repository's schema gives (storagegen -check says the same).
func TestReviewFilesUpToDate(t *testing.T) {
	m := loadRepoSchema(t)
	for name, want := range map[string][]byte{"STORAGE.md": Catalogue(m), "storagegen.schema.json": JSONSchema()} {
		got, err := os.ReadFile(filepath.Join("..", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what schema.yaml gives (%v); run go generate ./...", name, err)
		}
	}
}
