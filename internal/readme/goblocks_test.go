package readme

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fragmentImports heads every fragment's file: the packages doc.go lists.
const fragmentImports = `package readme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/storagegen/storagegen/generated"
	"github.com/storagegen/storagegen/runtime"
)
`

// prelude declares the variables that fragments use without declaring
// them, as doc.go lists them.
const prelude = `package readme

import (
	"context"

	"github.com/storagegen/storagegen/generated"
	"github.com/storagegen/storagegen/runtime"
)

var (
	ctx        context.Context
	ds         *runtime.DataStore
	m1, m2, m3 generated.NodeMessage
	job        generated.JobRequest
	handler    runtime.Handler[generated.JobRequest]
	value      any
)
`

// The go/types error codes of "declared and not used" (UnusedVar) and
// "imported and not used" (UnusedImport). go/types keeps codes in the
// unexported field go116code and documents reading it by reflection;
// TestIgnoredCodes checks that these numbers still mean those errors.
const (
	codeUnusedImport = 8
	codeUnusedVar    = 101
)

// starterModule is the module of the README's section "Using storagegen in
// your module"; TestFirstHour builds the blocks that import it.
const starterModule = "example.com/engine"

func errorCode(err types.Error) int64 {
	return reflect.ValueOf(err).FieldByName("go116code").Int()
}

// ignored reports whether err is one that fragments may make: a variable
// or an import left unused.
func ignored(err types.Error) bool {
	code := errorCode(err)
	return code == codeUnusedVar || code == codeUnusedImport
}

// TestGoBlocks: every go block of README.md compiles, as doc.go
// describes; an error is reported at its README line.
func TestGoBlocks(t *testing.T) {
	md := readme(t)
	fset := token.NewFileSet()
	var fragments []*ast.File
	var whole [][]*ast.File
	imports := map[string]bool{}
	checked, skipped := 0, 0
	for _, b := range blocks(md) {
		if b.info != "go" {
			continue
		}
		// A //line comment makes every position in the block a README
		// position.
		lineDirective := fmt.Sprintf("//line README.md:%d:1\n", b.line+1)
		var src string
		isFile := slices.ContainsFunc(strings.Split(b.text, "\n"), func(l string) bool { return strings.HasPrefix(l, "package ") })
		if isFile {
			src = lineDirective + b.text
		} else {
			src = fragmentImports + "\nfunc _() {\n" + lineDirective + b.text + "}\n"
		}
		f, err := parser.ParseFile(fset, fmt.Sprintf("block%d.go", b.line), src, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s\n(in the go block at README.md:%d, %s)", scannerErrors(err), b.line, b.section)
			continue
		}
		if isFile {
			if slices.ContainsFunc(f.Imports, func(s *ast.ImportSpec) bool {
				p, _ := strconv.Unquote(s.Path.Value)
				return p == starterModule || strings.HasPrefix(p, starterModule+"/")
			}) {
				skipped++ // TestFirstHour builds it
				continue
			}
			for _, s := range f.Imports {
				p, _ := strconv.Unquote(s.Path.Value)
				imports[p] = true
			}
			whole = append(whole, []*ast.File{f})
		} else {
			fragments = append(fragments, f)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("README.md has no go block")
	}
	pre, err := parser.ParseFile(fset, "prelude.go", prelude, 0)
	if err != nil {
		t.Fatal(err)
	}
	imps, err := parser.ParseFile(fset, "imports.go", fragmentImports, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range imps.Imports {
		p, _ := strconv.Unquote(s.Path.Value)
		imports[p] = true
	}
	imp := exportImporter(t, fset, imports)

	var goBlocks []block
	for _, b := range blocks(md) {
		if b.info == "go" {
			goBlocks = append(goBlocks, b)
		}
	}
	check := func(files []*ast.File) {
		conf := types.Config{
			Importer: imp,
			Error: func(err error) {
				te, ok := err.(types.Error)
				if !ok {
					t.Error(err)
					return
				}
				if ignored(te) {
					return
				}
				// The block is the last one that starts before the error.
				line := fset.Position(te.Pos).Line
				var in block
				for _, b := range goBlocks {
					if b.line < line {
						in = b
					}
				}
				t.Errorf("%s\n(in the go block at README.md:%d, %s: fix the README, or the API if the README is right)", te, in.line, in.section)
			},
		}
		conf.Check("readme", fset, files, nil)
	}
	check(append([]*ast.File{pre}, fragments...))
	for _, files := range whole {
		check(files)
	}
	t.Logf("type-checked %d go blocks of README.md; %d that import %s are built by TestFirstHour", checked, skipped, starterModule)
}

// scannerErrors formats a parse error, one line per error.
func scannerErrors(err error) string {
	var list scanner.ErrorList
	if errors.As(err, &list) {
		var lines []string
		for _, e := range list {
			lines = append(lines, e.Error())
		}
		return strings.Join(lines, "\n")
	}
	return err.Error()
}

// exportImporter returns an importer that reads the compiler's export data
// of the given packages and their dependencies, as go list -export reports
// it: the build cache serves them, so nothing is type-checked from source.
func exportImporter(t *testing.T, fset *token.FileSet, pkgs map[string]bool) types.Importer {
	t.Helper()
	args := []string{"list", "-export", "-deps", "-json=ImportPath,Export,Error"}
	for p := range pkgs {
		args = append(args, p)
	}
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.Bytes())
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Export string
			Error              *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		exports[p.ImportPath] = p.Export
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %q: import it in the prelude of internal/readme", path)
		}
		return os.Open(file)
	})
}

// TestIgnoredCodes: the error codes that fragments may make still mean
// an unused variable and an unused import.
func TestIgnoredCodes(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", "package p\n\nimport \"strings\"\n\nfunc _() { x := 1 }\n", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	conf := types.Config{
		Importer: importer.Default(),
		Error:    func(err error) { got[err.(types.Error).Msg] = errorCode(err.(types.Error)) },
	}
	conf.Check("p", fset, []*ast.File{f}, nil)
	want := map[string]int64{"declared and not used: x": codeUnusedVar, `"strings" imported and not used`: codeUnusedImport}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("go/types reports %v, want %v", got, want)
	}
}
