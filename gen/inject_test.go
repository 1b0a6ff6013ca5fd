package gen

import (
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// declarations lists the top-level declarations of generated files: one
// "FILE: kind name" line each (methods as Recv.Name), sorted. It fails the
// test if a file does not parse or has a comment that is not a // line
// comment, since schema text is only ever written as line comments.
func declarations(t testing.TB, files map[string][]byte) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for name, src := range files {
		f, err := goparser.ParseFile(fset, name, src, goparser.ParseComments)
		if err != nil {
			t.Fatalf("%s does not parse: %v", name, err)
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if !strings.HasPrefix(c.Text, "//") {
					t.Fatalf("%s has a comment that is not a line comment: %q", name, c.Text)
				}
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				fn := d.Name.Name
				if d.Recv != nil {
					fn = d.Recv.List[0].Type.(*ast.Ident).Name + "." + fn
				}
				out = append(out, name+": func "+fn)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ImportSpec:
						alias := ""
						if s.Name != nil {
							alias = s.Name.Name + " "
						}
						out = append(out, name+": import "+alias+s.Path.Value)
					case *ast.TypeSpec:
						out = append(out, name+": type "+s.Name.Name)
					case *ast.ValueSpec:
						for _, n := range s.Names {
							out = append(out, name+": "+d.Tok.String()+" "+n.Name)
						}
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// expectedDeclarations are the declarations that Generate promises for m,
// imports aside: the types, the store, and per entry its declaration
// variable, its accessor and an at-least-once queue's aliases.
func expectedDeclarations(m *Model) []string {
	out := []string{"store.go: const _", "store.go: const Prefix", "store.go: type Store", "store.go: func New", "store.go: type Queues", "store.go: type Caches"}
	for _, t := range m.Types {
		out = append(out, "types.go: type "+t.Name)
	}
	for _, q := range m.Queues {
		out = append(out, "store.go: var "+q.VarName, "store.go: func Queues."+q.GoName)
		if q.Reliable != nil {
			out = append(out, "store.go: type "+q.DeliveryType, "store.go: type "+q.HandlerType)
		}
	}
	for _, c := range m.Caches {
		out = append(out, "store.go: var "+c.VarName, "store.go: func Caches."+c.GoName)
	}
	slices.Sort(out)
	return out
}

// withoutImports drops the import lines of declarations.
func withoutImports(decls []string) []string {
	return slices.DeleteFunc(slices.Clone(decls), func(d string) bool { return strings.Contains(d, ": import ") })
}

// Doc text that tries to close a comment and declare code stays text: the
// generated files declare exactly what the model promises, and the text is
// there, in line comments.
func TestDocInjection(t *testing.T) {
	payloads := []string{
		"/**/ var Injected = 42",
		"/**/ func init() { panic(\"injected\") }",
		"*/ var Injected = 1 /*",
		"// +build ignore",
		"//go:generate rm -rf /",
		"*/\nvar Injected = 1\n/*",
		"first line\n/**/ type Injected struct{}\nlast line",
	}
	for i, doc := range payloads {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			q := fmt.Sprintf("%q", doc)
			src := "version: 1\ntypes:\n  T:\n    doc: " + q + "\n    fields:\n      a: {type: string, doc: " + q + "}\n" +
				"queues:\n  q: {payload: T, doc: " + q + "}\n  r: {payload: T, delivery: at-least-once, doc: " + q + "}\n" +
				"caches:\n  c: {payload: T, ttl: 1h, doc: " + q + "}\n"
			m, err := Load("schema.yaml", []byte(src), CheckOptions{DefaultPackage: "out"})
			if err != nil {
				t.Fatal(err)
			}
			files, err := Generate(m)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(expectedDeclarations(m), withoutImports(declarations(t, files))); diff != "" {
				t.Errorf("declarations (-want +got):\n%s", diff)
			}
			first, _, _ := strings.Cut(doc, "\n")
			for name, src := range files {
				if n := strings.Count(string(src), "// "+first+"\n"); n < 2 {
					t.Errorf("%s has the doc's first line as a comment %d times, want at least 2:\n%s", name, n, src)
				}
			}
		})
	}
}

// Text that could hide or reorder what a reviewer reads is refused where
// it stands.
func TestHiddenText(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"bidi in a doc", "version: 1\nqueues:\n  q: {payload: x.com/y.T, doc: \"safe \\u202E;evil\"}\n",
			`schema.yaml:3:32: queue "q": doc has a bidirectional control (U+202E) at line 1, character 6 of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls`},
		{"NUL in a type doc", "version: 1\ntypes:\n  T: {doc: \"a\\0b\", fields: {a: string}}\n",
			`schema.yaml:3:12: type "T": doc has a control character (U+0000) at line 1, character 2 of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls`},
		{"BOM in a field doc", "version: 1\ntypes:\n  T:\n    fields:\n      a: {type: string, doc: \"x\\uFEFF\"}\n",
			`schema.yaml:5:30: type "T" field "a": doc has a byte order mark (U+FEFF) at line 1, character 2 of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls`},
		{"line separator on line 2", "version: 1\ncaches:\n  c:\n    payload: x.com/y.T\n    ttl: 1h\n    doc: \"one\\ntwo\\u2028three\"\n",
			`schema.yaml:6:10: cache "c": doc has a Unicode line or paragraph separator (U+2028) at line 2, character 4 of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls`},
		{"carriage return", "version: 1\nqueues:\n  q: {payload: x.com/y.T, doc: \"a\\rb\"}\n",
			`schema.yaml:3:32: queue "q": doc has a control character (U+000D) at line 1, character 2 of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls`},
		{"isolate in allow_breaking", "version: 1\nqueues:\n  q: {payload: x.com/y.T, allow_breaking: \"ok\\u2066\"}\n",
			`schema.yaml:3:43: queue "q": allow_breaking has a bidirectional control (U+2066) at line 1, character 3 of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls`},
		{"bidi in a prefix", "version: 1\nprefix: \"a\\u202Eb:\"\n",
			`schema.yaml:2:9: prefix "a\u202eb:" has U+202E at offset 1, which is not a visible character; keys are shown in comments and the catalogue`},
		{"angle bracket in a prefix", "version: 1\nprefix: \"a<b>:\"\n",
			`schema.yaml:2:9: prefix "a<b>:" has '<' at offset 1; it may not contain < or >, which the documentation uses to show placeholders (<name>)`},
		{"zero width space in a key", "version: 1\nqueues:\n  q: {payload: x.com/y.T, key: \"a\\u200B:{id}\"}\n",
			`schema.yaml:3:32: queue "q": key pattern "a\u200b:{id}" has U+200B at offset 1, which is not a visible character; keys are shown in comments and the catalogue`},
		{"angle bracket in a key", "version: 1\nqueues:\n  q: {payload: x.com/y.T, key: \"a<:{id}\"}\n",
			`schema.yaml:3:32: queue "q": key pattern "a<:{id}" has '<' at offset 1; literal text may not contain < or >, which the documentation uses to show placeholders (<name>)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadErrors(t, tc.src)
			if diff := cmp.Diff([]string{tc.want}, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// The catalogue shows doc text as text: no HTML, heading, table, list or
// code span comes out of it, and keys with backticks or pipes stay one
// code span in one cell.
func TestCatalogueEscapes(t *testing.T) {
	src := "version: 1\nprefix: \"a`b|\"\ntypes:\n  T:\n    doc: \"# Heading\\n<script>alert(1)</script>\\n```\\n| a | b |\\n1. item\\n    code\\n<!-- hide\"\n" +
		"    fields:\n      a: {type: string, doc: \"x | y\\n<b>bold</b> `c`\"}\n" +
		"queues:\n  q: {payload: T, key: \"k|`{id}\"}\n"
	m, err := Load("schema.yaml", []byte(src), CheckOptions{DefaultPackage: "out"})
	if err != nil {
		t.Fatal(err)
	}
	cat := string(Catalogue(m))
	for _, want := range []string{
		"\\# Heading\n\\<script\\>alert(1)\\</script\\>\n\\`\\`\\`\n\\| a \\| b \\|\n1\\. item\ncode\n\\<!-- hide\n",
		"| `a` | `A` | `string` | no | x \\| y \\<b\\>bold\\</b\\> \\`c\\` |\n",
		"| key | ``a`b\\|queue:{k\\|`<id>}`` |\n",
		"Prefix: ``a`b|``.",
	} {
		if !strings.Contains(cat, want) {
			t.Errorf("catalogue lacks %q:\n%s", want, cat)
		}
	}
}
