package gen

import (
	"strings"
	"testing"
)

// Schemas that the checker used to accept although their output did not
// compile: each is now either refused with a position or generates code
// that type-checks.
func TestAcceptedCompiles(t *testing.T) {
	for _, tc := range []struct{ name, src, err string }{
		{"two packages with one last element", "version: 1\ntypes:\n  T:\n    fields:\n      a: example.com/a/nodes.X\n      b: example.com/b/nodes.Y\nqueues:\n  q: {payload: example.com/b/nodes.Y}\n", ""},
		{"renamed imports against placeholders", "version: 1\nqueues:\n  a: {payload: example.com/a/nodes.X}\n  b: {payload: example.com/b/nodes.Y, key: \"b:{nodes1}\"}\n  c: {payload: example.com/x/runtime.R, key: \"c:{runtime1}\"}\n  d: {payload: example.com/x/time.T, key: \"d:{time1}\"}\n", ""},
		{"placeholder named like a chosen import", "version: 1\ntypes:\n  T:\n    fields:\n      a: example.com/a/nodes.X\n      b: example.com/b/nodes.Y\nqueues:\n  q: {payload: T, key: \"q:{nodes2}\"}\n",
			`schema.yaml:8:24: queue "q": placeholder {nodes2} becomes parameter nodes2, which hides the package of example.com/b/nodes; rename the placeholder`},
		{"packages named like receivers", "version: 1\nqueues:\n  q: {payload: example.com/qs.T, key: \"q:{id}\"}\ncaches:\n  c: {payload: example.com/cs.T, ttl: 1h, key: \"c:{id}\"}\n  d: {payload: example.com/ds.T, ttl: 1h}\n", ""},
		{"packages named like keywords and builtins", "version: 1\ntypes:\n  T:\n    fields:\n      a: example.com/func.X\n      b: example.com/string.Y\n      c: example.com/err.Z\n      d: example.com/x/v2.V\n      e: example.com/1.N\nqueues:\n  q: {payload: T, key: \"q:{id}\"}\n", ""},
		{"package main", "version: 1\npackage: main\n", `schema.yaml:2:10: package main cannot be imported; generated code is a package that nodes import, so name it after what it holds, such as storage`},
		{"runtime type as payload", "version: 1\nqueues:\n  q: {payload: github.com/storagegen/storagegen/runtime.Queue}\n",
			`schema.yaml:3:16: queue "q": payload "github.com/storagegen/storagegen/runtime.Queue" is a type of the storagegen runtime, which generated code already uses; payloads and fields are your own types`},
		{"import path with a leading dot", "version: 1\nqueues:\n  q: {payload: example.com/.x.T}\n",
			`schema.yaml:3:16: queue "q": payload "example.com/.x.T" has an invalid import path: element ".x" starts or ends with a dot`},
		{"package named init", "version: 1\nqueues:\n  q: {payload: example.com/init.T}\n", ""},
		{"Windows device name", "version: 1\nqueues:\n  q: {payload: example.com/con.T}\n",
			`schema.yaml:3:16: queue "q": payload "example.com/con.T" has an invalid import path: element "con" is a reserved file name on Windows`},
		{"Windows short name", "version: 1\nqueues:\n  q: {payload: example.com/x~1.T}\n",
			`schema.yaml:3:16: queue "q": payload "example.com/x~1.T" has an invalid import path: element "x~1" ends in a tilde and digits, which Windows short names use`},
		{"vendored package", "version: 1\nqueues:\n  q: {payload: example.com/vendor/x.T}\n",
			`schema.yaml:3:16: queue "q": payload "example.com/vendor/x.T" has an invalid import path: a vendor element: vendored packages cannot be imported by path`},
		{"paths that differ in case", "version: 1\ntypes:\n  T:\n    fields:\n      a: example.com/m/x.U\nqueues:\n  q: {payload: example.com/m/X.T}\n",
			`schema.yaml:7:16: import path "example.com/m/X" differs only in case from "example.com/m/x" at line 5, column 7; Go cannot import both into one package`},
		{"max_deliveries over 32 bits", "version: 1\nqueues:\n  q: {payload: example.com/x.T, delivery: at-least-once, max_deliveries: 9223372036854775807}\n",
			`schema.yaml:3:74: queue "q": max_deliveries 9223372036854775807 is over 2147483647, the most a 32-bit int holds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load("schema.yaml", []byte(tc.src), CheckOptions{DefaultPackage: "out"})
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v\nwant %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			files, err := Generate(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := typeCheck(t, m, files); err != nil {
				t.Errorf("generated code does not type-check: %v\n%s", err, files["store.go"])
			}
			for name, src := range files {
				for path, alias := range m.Imports {
					if !strings.Contains(string(src), alias+" \""+path+"\"") && strings.Contains(string(src), "\""+path+"\"") {
						t.Errorf("%s imports %s under another name than %s:\n%s", name, path, alias, src)
					}
				}
			}
		})
	}
}

// A render failure is a positioned error, not a dump of source. Check
// never lets one through; a hand-made model with a name that is no Go
// identifier stands in for a bug.
func TestRenderFailure(t *testing.T) {
	m, err := Load("schema.yaml", []byte("version: 1\nqueues:\n  q: {payload: example.com/x.T}\n"), CheckOptions{DefaultPackage: "out"})
	if err != nil {
		t.Fatal(err)
	}
	m.Queues[0].GoName = "Bad Name"
	_, err = Generate(m)
	list, ok := err.(ErrorList)
	if !ok || len(list) != 1 || list[0].Pos != (Pos{1, 1}) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "package out") {
		t.Fatalf("Generate error = %T %q; want one positioned line without source", err, err)
	}
	t.Log(err)
}
