package gen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/internal/txtar"
)

// FuzzLoad feeds arbitrary bytes to Parse, Check and Generate: they may
// refuse them, but never panic, and every refusal is a positioned list.
// What they accept generates files that declare exactly what the model
// promises and type-check (go/types, with the real runtime and stub
// payload packages), and whose declarations of a kind share no key.
// The seed corpus (every scenario schema and the repository's schema)
// runs with go test; go test -fuzz=FuzzLoad ./gen explores further.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("version: 1\n"))
	f.Add([]byte("version: 1\nqueues: {a: {payload: x.com/y.T, key: \"{a}:{b:int}\"}}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("version: 1\ntypes: {T: {fields: {a: '[][]map[string]T'}}}\n"))
	// Attacks: doc text that tries to become code, names the emitter
	// would rename, keys two declarations share, work out of proportion.
	f.Add([]byte("version: 1\ntypes:\n  T:\n    doc: \"/**/ func init() { panic(1) }\"\n    fields: {a: {type: string, doc: \"x\\n*/ var Injected = 1 /*\"}}\nqueues:\n  q: {payload: T, doc: \"/**/ var Injected = 42\"}\n"))
	f.Add([]byte("version: 1\nqueues:\n  a: {payload: example.com/a/nodes.X}\n  b: {payload: example.com/b/nodes.Y, key: \"b:{nodes1}\"}\n  c: {payload: example.com/x/runtime.R, key: \"c:{runtime1}\"}\n  d: {payload: example.com/qs.T, key: \"d:{time1}\"}\n"))
	f.Add([]byte("version: 1\nprefix: \"flow:\"\ncaches:\n  by_id: {key: \"{id}\", payload: x.com/y.T, ttl: 1h}\n  settings: {key: \"settings:{name}\", payload: x.com/y.T, ttl: 1h}\n"))
	f.Add([]byte("version: 1\nx: &m {a: string, b: string, c: string}\ny: &n [*m, *m, *m, *m]\ntypes:\n  A: {fields: *m}\n  B: {fields: *m}\n"))
	f.Add([]byte("version: 1\ntypes: {T: {doc: \"a\\u202Eb\", fields: {a: \"[][][][][][][][][]int\"}}}\n"))
	// Shards at and past their limits, on both kinds of queue.
	f.Add([]byte("version: 1\nqueues:\n  a: {payload: x.com/y.T, shards: 1024}\n  b: {payload: x.com/y.T, delivery: at-least-once, shards: 2, key: \"b:{id}\"}\n  c: {payload: x.com/y.T, shards: 1025}\n"))
	f.Add([]byte("version: 1\nqueues:\n  a: {payload: x.com/y.T, shards: 0x10}\n  b: {payload: x.com/y.T, shards: \"+3\"}\n"))
	// The plain layout: values as they are, which may alias keys of the
	// other layout, of other plain declarations, and of one's own.
	f.Add([]byte("version: 1\nprefix: \"flow:\"\nqueues:\n  e: {payload: x.com/y.T, key: \"queue_{s}_{t}\", layout: plain}\n  j: {payload: x.com/y.T, key: jobs, delivery: at-least-once, shards: 2}\n  p: {payload: x.com/y.T, key: \"{x}\", layout: plain}\n  q: {payload: x.com/y.T, key: \"1:{x}\", layout: plain}\ncaches:\n  o: {payload: x.com/y.T, key: \"{n}_output\", layout: plain, ttl: 1h}\n  s: {payload: x.com/y.T, key: \"{n}:settings\", ttl: 1h}\n"))
	f.Add([]byte("version: 1\nqueues:\n  a: {payload: x.com/y.T, key: \"q_{a}\", layout: plain}\n  b: {payload: x.com/y.T, key: \"q_{a}:dead\", layout: plain}\n  c: {payload: x.com/y.T, layout: plain, shards: 2}\n  d: {payload: x.com/y.T, layout: plain, delivery: at-least-once}\n  e: {payload: x.com/y.T, layout: Plain}\n"))
	if src, err := os.ReadFile("../schema.yaml"); err == nil {
		f.Add(src)
	}
	paths, _ := filepath.Glob("testdata/scenarios/*.txtar")
	for _, p := range paths {
		data, _ := os.ReadFile(p)
		if schema, ok := txtar.Parse(data).Get("schema.yaml"); ok {
			f.Add(schema)
		}
	}
	repo := loadRepoSchema(f)
	if _, err := exportData(); err != nil { // built once, before the hang timer runs
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("HANG on %q", src)) })
		defer tm.Stop()
		m, err := Load("schema.yaml", src, CheckOptions{DefaultPackage: "out"})
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "schema.yaml:") || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("unpositioned error: %v", e)
				}
			}
			return
		}
		for _, q := range m.Queues {
			if q.Shards < 1 || q.Shards > keyspace.MaxShards {
				t.Fatalf("queue %q accepted with %d shards", q.Name, q.Shards)
			}
		}
		files, err := Generate(m)
		if err != nil {
			t.Fatalf("Generate failed on a checked model: %v", err)
		}
		// Accepted means compiles, and declares exactly what it should:
		// no text of the schema became code.
		if diff := cmp.Diff(expectedDeclarations(m), withoutImports(declarations(t, files))); diff != "" {
			t.Fatalf("declarations (-want +got):\n%s", diff)
		}
		if err := typeCheck(t, m, files); err != nil {
			t.Fatalf("generated code does not type-check: %v\n%s", err, files["store.go"])
		}
		// Keys of two declarations of a kind are disjoint: an example key
		// of one tagged declaration never parses under another tagged one,
		// and no search finds a key that two share, in either layout.
		sameKind := [][]keyspace.KeySet{nil, nil}
		for _, q := range m.Queues {
			sameKind[0] = append(sameKind[0], q.KeySet())
		}
		for _, c := range m.Caches {
			sameKind[1] = append(sameKind[1], c.KeySet())
		}
		for _, keys := range sameKind {
			for i, a := range keys {
				for j, b := range keys {
					if i == j {
						continue
					}
					if a.Layout == keyspace.Tagged && b.Layout == keyspace.Tagged {
						if _, err := b.Pattern.Parse(exampleName(a.Pattern, a.Layout)); err == nil {
							t.Fatalf("key %q of %q parses under %q", exampleName(a.Pattern, a.Layout), a.Pattern, b.Pattern)
						}
					}
					if match, _ := keyspace.OverlapKeys(a, b, -1); match != nil {
						t.Fatalf("%q (%v) and %q (%v) both give %q", a.Pattern, a.Layout, b.Pattern, b.Layout, match.Key)
					}
				}
			}
		}
		// The review stages take any checked model: no change against
		// itself, and positioned findings and changes against another.
		if changes := Diff(m, m); len(changes) != 0 {
			t.Fatalf("Diff of a schema with itself: %v", changes)
		}
		for _, c := range append(Diff(repo, m), Diff(m, repo)...) {
			if c.Pos.Line < 1 || c.Message == "" {
				t.Fatalf("change without a position or message: %+v", c)
			}
		}
		for _, f := range Lint(m, nil) {
			if f.Pos.Line < 1 || f.Fix == "" {
				t.Fatalf("finding without a position or fix: %+v", f)
			}
		}
		Catalogue(m)
		checkPython(t, m)
	})
}

// checkPython generates the Python package of an accepted model: the
// Python run refuses it with positioned errors, or renders text that is
// valid UTF-8 with no carriage return and no control character but the
// newline (what pyStr and pyDocstring guarantee by construction; that
// every accepted corpus schema parses is TestPythonParsesCorpus's part,
// as a Python process is too slow here).
func checkPython(t *testing.T, m *Model) {
	pm, err := PythonModel(m, "out")
	if err != nil {
		list, ok := err.(ErrorList)
		if !ok || len(list) == 0 {
			t.Fatalf("Python refusal is not a non-empty ErrorList: %T %v", err, err)
		}
		for _, e := range list {
			if e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("unpositioned Python error: %v", e)
			}
		}
		return
	}
	files, err := GeneratePython(pm)
	if err != nil {
		t.Fatalf("GeneratePython failed on a checked model: %v", err)
	}
	for _, name := range []string{"__init__.py", "types.py", "store.py"} {
		src := files[name]
		if !utf8.Valid(src) {
			t.Fatalf("%s is not valid UTF-8", name)
		}
		for _, r := range string(src) {
			if r != '\n' && (r < 0x20 || r == 0x7f || hiddenRune(r) != "") {
				t.Fatalf("%s has %U:\n%s", name, r, src)
			}
		}
	}
}
