package gen

import (
	"fmt"
	"go/ast"
	"go/importer"
	goparser "go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// exportData maps the packages that generated code imports besides the
// schema's own (time and the runtime) to the compiler's export data for
// them, built once per test process by go list -export.
var exportData = sync.OnceValues(func() (map[string]string, error) {
	cmd := exec.Command("go", "list", "-export", "-f", "{{.ImportPath}}\t{{.Export}}", "time", runtimePath)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export: %v", err)
	}
	files := map[string]string{}
	for line := range strings.Lines(string(out)) {
		path, file, _ := strings.Cut(strings.TrimSpace(line), "\t")
		files[path] = file
	}
	return files, nil
})

// stubImporter imports time and the runtime from their export data, and
// makes every other package up: a package with an empty struct type for
// each name the model uses from it. That is all generated code needs to
// know of an external payload type.
type stubImporter struct {
	gc    types.Importer
	stubs map[string]*types.Package
}

var (
	typeCheckMu  sync.Mutex
	typeCheckFS  = token.NewFileSet()
	realPackages types.Importer
)

func (imp *stubImporter) Import(path string) (*types.Package, error) {
	if p := imp.stubs[path]; p != nil {
		return p, nil
	}
	return imp.gc.Import(path)
}

// typeCheck type-checks the generated files of m with go/types, and
// returns the first error.
func typeCheck(t testing.TB, m *Model, files map[string][]byte) error {
	t.Helper()
	exports, err := exportData()
	if err != nil {
		t.Fatal(err)
	}
	typeCheckMu.Lock()
	defer typeCheckMu.Unlock()
	if realPackages == nil {
		realPackages = importer.ForCompiler(typeCheckFS, "gc", func(path string) (io.ReadCloser, error) {
			if f, ok := exports[path]; ok && f != "" {
				return os.Open(f)
			}
			return nil, fmt.Errorf("no export data for %s", path)
		})
	}
	imp := &stubImporter{gc: realPackages, stubs: map[string]*types.Package{}}
	var stub func(r *TypeRef)
	stub = func(r *TypeRef) {
		switch r.Kind {
		case Slice, Map:
			stub(r.Elem)
		case External:
			p := imp.stubs[r.Path]
			if p == nil {
				p = types.NewPackage(r.Path, "stub")
				p.MarkComplete()
				imp.stubs[r.Path] = p
			}
			if p.Scope().Lookup(r.Name) == nil {
				obj := types.NewTypeName(token.NoPos, p, r.Name, nil)
				types.NewNamed(obj, types.NewStruct(nil, nil), nil)
				p.Scope().Insert(obj)
			}
		}
	}
	for _, ty := range m.Types {
		for _, f := range ty.Fields {
			stub(f.Type)
		}
	}
	for _, q := range m.Queues {
		stub(q.Payload)
	}
	for _, c := range m.Caches {
		stub(c.Payload)
	}
	var parsed []*ast.File
	for name, src := range files {
		f, err := goparser.ParseFile(typeCheckFS, name, src, 0)
		if err != nil {
			return err
		}
		parsed = append(parsed, f)
	}
	conf := types.Config{Importer: imp}
	_, err = conf.Check("example.com/"+m.Package, typeCheckFS, parsed, nil)
	return err
}
