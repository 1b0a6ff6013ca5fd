package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/internal/pyclient"
	"github.com/storagegen/storagegen/internal/txtar"
)

// writePyPackage writes a generated package into root/pkg.
func writePyPackage(t *testing.T, root, pkg string, files map[string][]byte) {
	t.Helper()
	dir := filepath.Join(root, pkg)
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// generatePython loads a schema file and generates its Python package.
func generatePython(t testing.TB, schemaPath, pkg string) map[string][]byte {
	t.Helper()
	src, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load("schema.yaml", src, CheckOptions{DefaultPackage: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	pm, err := PythonModel(m, pkg)
	if err != nil {
		t.Fatal(err)
	}
	files, err := GeneratePython(pm)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// pythonOutputs are the repository's generated Python packages and their
// schemas.
var pythonOutputs = []struct{ schema, dir string }{
	{"../schema.yaml", "../examples/python/flowstore"},
	{"../internal/pyinterop/schema.yaml", "../internal/pyinterop/py/pyinterop"},
}

// isPyOutput reports the files of a Python scenario that are outputs: the
// three modules generated from the schema (the copied runtime and scripts
// are checked by TestPythonUpToDate and TestPythonCopies), or stderr.
func isPyOutput(name string) bool {
	return name == "stderr" || name == "out/__init__.py" || name == "out/types.py" || name == "out/store.py"
}

// TestPythonGolden: each testdata/pyscenarios/NAME.txtar holds schema.yaml
// and either the expected __init__.py, types.py and store.py (out/…) or
// the expected errors (stderr) of the Python run, refreshed with
// go test ./gen -run TestPythonGolden -update.
func TestPythonGolden(t *testing.T) {
	paths, _ := filepath.Glob("testdata/pyscenarios/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no Python scenarios")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := txtar.Parse(data)
			schema, ok := a.Get("schema.yaml")
			if !ok {
				t.Fatal("no schema.yaml in the archive")
			}
			got := map[string][]byte{}
			if files, err := pythonScenario(schema); err != nil {
				got["stderr"] = []byte(err.Error() + "\n")
			} else {
				for name, src := range files {
					if isPyOutput("out/" + name) {
						got["out/"+name] = src
					}
				}
			}
			if *update {
				a.SetOutputs(isPyOutput, got)
				if err := os.WriteFile(path, a.Format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(a.Outputs(isPyOutput), stringMap(got)); diff != "" {
				t.Errorf("output differs from %s (-want +got); run go test ./gen -run TestPythonGolden -update if the change is intended:\n%s", path, diff)
			}
		})
	}
}

func pythonScenario(schema []byte) (map[string][]byte, error) {
	m, err := Load("schema.yaml", schema, CheckOptions{DefaultPackage: "out"})
	if err != nil {
		return nil, err
	}
	pm, err := PythonModel(m, "out")
	if err != nil {
		return nil, err
	}
	return GeneratePython(pm)
}

// TestPythonUpToDate regenerates the repository's Python packages in
// memory and compares them with the committed ones, file for file, as
// storagegen -check does: nothing missing, different or stale.
func TestPythonUpToDate(t *testing.T) {
	// The test schema's Go code, which TestPythonCodecMatchesGo compiles.
	src, err := os.ReadFile("../internal/pyinterop/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load("schema.yaml", src, CheckOptions{DefaultPackage: "pyinterop"})
	if err != nil {
		t.Fatal(err)
	}
	goFiles, err := Generate(m)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range goFiles {
		if got, err := os.ReadFile(filepath.Join("../internal/pyinterop", name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("internal/pyinterop/%s is not what its schema gives (%v); run go generate ./...", name, err)
		}
	}
	for _, o := range pythonOutputs {
		files := generatePython(t, o.schema, filepath.Base(o.dir))
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(o.dir, filepath.FromSlash(name)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s is not what %s gives (%v); run go generate ./...", o.dir, name, o.schema, err)
			}
		}
		for _, sub := range []string{"", "lua"} {
			entries, err := os.ReadDir(filepath.Join(o.dir, sub))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				name := strings.TrimPrefix(sub+"/"+e.Name(), "/")
				if !e.IsDir() && files[name] == nil && (strings.HasSuffix(name, ".py") || strings.HasSuffix(name, ".lua")) {
					t.Errorf("%s/%s is not generated from %s", o.dir, name, o.schema)
				}
			}
		}
	}
}

// TestPythonCopies checks that the Python packages run the very scripts
// of the Go runtime (each lua/NAME.lua of a committed package is
// runtime/lua/NAME.lua, byte for byte, and there is no other) and carry
// the hand-written modules of gen/python under the generated header.
func TestPythonCopies(t *testing.T) {
	scripts, _ := filepath.Glob("../runtime/lua/*.lua")
	modules, _ := filepath.Glob("python/*.py")
	if len(scripts) < 10 || len(modules) == 0 {
		t.Fatalf("found %d scripts and %d modules", len(scripts), len(modules))
	}
	for _, o := range pythonOutputs {
		copies, _ := filepath.Glob(filepath.Join(o.dir, "lua", "*.lua"))
		if len(copies) != len(scripts) {
			t.Errorf("%s/lua has %d scripts, runtime/lua %d", o.dir, len(copies), len(scripts))
		}
		for _, s := range scripts {
			want, _ := os.ReadFile(s)
			got, err := os.ReadFile(filepath.Join(o.dir, "lua", filepath.Base(s)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/lua/%s differs from runtime/lua (%v); run go generate ./...", o.dir, filepath.Base(s), err)
			}
		}
		for _, m := range modules {
			src, _ := os.ReadFile(m)
			got, err := os.ReadFile(filepath.Join(o.dir, filepath.Base(m)))
			if err != nil || !bytes.Equal(got, append([]byte(PythonHeader("schema.yaml")+"\n"), src...)) {
				t.Errorf("%s/%s is not gen/%s under the header (%v); run go generate ./...", o.dir, filepath.Base(m), m, err)
			}
		}
	}
}

// TestPythonDeterministic renders the same model many times and gets the
// same bytes, every .py file under the header.
func TestPythonDeterministic(t *testing.T) {
	first := generatePython(t, "../internal/pyinterop/schema.yaml", "pyinterop")
	for range 10 {
		if diff := cmp.Diff(stringMap(first), stringMap(generatePython(t, "../internal/pyinterop/schema.yaml", "pyinterop"))); diff != "" {
			t.Fatalf("two runs differ:\n%s", diff)
		}
	}
	for name, src := range first {
		if strings.HasSuffix(name, ".py") && !bytes.HasPrefix(src, []byte("# Code generated by storagegen from schema.yaml. DO NOT EDIT.\n")) {
			t.Errorf("%s lacks the generated-code header", name)
		}
	}
}

// pyErrorRE matches the expectation comments of the mypy failure cases:
// # ERROR "regexp" on the line mypy must reject.
var pyErrorRE = regexp.MustCompile(`# ERROR ("(?:[^"\\]|\\.)*")`)

// TestPythonMypy runs mypy --strict on the generated packages (schema.yaml's
// flowstore and the test schema's pyinterop) and on
// testdata/pymypy/*.py: ok_*.py must pass, and each fail_*.py must be
// rejected exactly on its lines that carry an ERROR comment, with a
// matching message, as a misspelled accessor or a wrong payload fails to
// compile in Go.
func TestPythonMypy(t *testing.T) {
	py := pyclient.Python(t)
	dir := t.TempDir()
	for _, o := range pythonOutputs {
		pkg := filepath.Base(o.dir)
		writePyPackage(t, dir, pkg, generatePython(t, o.schema, pkg))
	}
	// The Python demo is type-checked like the ok_ snippets.
	snippets, _ := filepath.Glob("testdata/pymypy/*.py")
	snippets = append(snippets, "../examples/python/demo.py")
	want := map[string]*regexp.Regexp{}
	args := []string{"-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes", "--cache-dir", filepath.Join(dir, ".mypy_cache"), "flowstore", "pyinterop"}
	for _, s := range snippets {
		src, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(s)
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, name)
		for i, line := range strings.Split(string(src), "\n") {
			if m := pyErrorRE.FindStringSubmatch(line); m != nil {
				expr, err := strconv.Unquote(m[1])
				if err != nil {
					t.Fatalf("%s:%d: bad ERROR comment: %v", s, i+1, err)
				}
				want[fmt.Sprintf("%s:%d", name, i+1)] = regexp.MustCompile(expr)
			}
		}
	}
	if len(want) < 3 {
		t.Fatalf("only %d expected errors in testdata/pymypy", len(want))
	}
	cmd := exec.Command(py, args...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	diagRE := regexp.MustCompile(`(?m)^([\w/.-]+\.py):(\d+): error: (.*)$`)
	got := map[string][]string{}
	for _, m := range diagRE.FindAllStringSubmatch(string(out), -1) {
		got[m[1]+":"+m[2]] = append(got[m[1]+":"+m[2]], m[3])
	}
	for key, re := range want {
		if !slices.ContainsFunc(got[key], re.MatchString) {
			t.Errorf("%s: want a mypy error matching %q, got %q", key, re, got[key])
		}
	}
	for key, msgs := range got {
		if want[key] == nil {
			t.Errorf("%s: unexpected mypy error %q", key, msgs)
		}
	}
	if t.Failed() || len(got) == 0 {
		t.Logf("mypy output:\n%s", out)
	}
}

// TestPythonCodec runs the Python unit tests of the generated codec
// (testdata/pytest/test_codec.py) on the test schema's package.
func TestPythonCodec(t *testing.T) {
	py := pyclient.Python(t)
	dir := t.TempDir()
	writePyPackage(t, dir, "pyinterop", generatePython(t, "../internal/pyinterop/schema.yaml", "pyinterop"))
	src, err := os.ReadFile("testdata/pytest/test_codec.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test_codec.py"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "unittest", "-v", "test_codec")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("\nOK")) {
		t.Fatalf("python unittest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// pyCheckScript parses each file named on stdin (one JSON object of name →
// source) with ast.parse and prints, for each, the top-level names it
// binds and, for each class, the names bound in its body: what
// TestPythonParsesCorpus compares with the model.
const pyCheckScript = `
import ast, json, sys
out = {}
for name, src in json.load(sys.stdin).items():
    try:
        tree = ast.parse(src, name)
    except SyntaxError as e:
        out[name] = {"error": "%s:%s: %s" % (name, e.lineno, e.msg)}
        continue
    top, classes = [], {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.append(node.name)
            members = []
            for n in node.body:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    members.append(n.name)
                elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                    members.append(n.target.id)
                elif isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
                    pass
                else:
                    members.append("?" + type(n).__name__)
            classes[node.name] = members
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            top.extend(t.id if isinstance(t, ast.Name) else "?" for t in targets)
        elif isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)):
            pass
        else:
            top.append("?" + type(node).__name__)
    out[name] = {"top": top, "classes": classes}
json.dump(out, sys.stdout)
`

// TestPythonParsesCorpus generates Python for every schema of the fuzz
// corpus, the scenarios, the repository and hostile schemas that the
// checker accepts, parses every file in one Python process, and checks
// that each declares exactly what the model says: no text of the schema
// became code.
func TestPythonParsesCorpus(t *testing.T) {
	py := pyclient.Python(t)
	var schemas [][]byte
	for _, s := range hostileSchemas {
		schemas = append(schemas, []byte(s))
	}
	for _, glob := range []string{"testdata/scenarios/*.txtar", "testdata/pyscenarios/*.txtar"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			data, _ := os.ReadFile(p)
			if s, ok := txtar.Parse(data).Get("schema.yaml"); ok {
				schemas = append(schemas, s)
			}
		}
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzLoad/*")
	for _, p := range corpus {
		data, _ := os.ReadFile(p)
		// go test fuzz v1: one line per argument, the []byte as a Go literal.
		for _, line := range strings.Split(string(data), "\n") {
			if lit, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(lit, ")")); err == nil {
					schemas = append(schemas, []byte(s))
				}
			}
		}
	}
	for _, o := range pythonOutputs {
		data, _ := os.ReadFile(o.schema)
		schemas = append(schemas, data)
	}
	sources := map[string]string{}
	want := map[string]any{}
	accepted := 0
	for i, schema := range schemas {
		m, err := Load("schema.yaml", schema, CheckOptions{DefaultPackage: "out"})
		if err != nil {
			continue
		}
		pm, err := PythonModel(m, "out")
		if err != nil {
			continue
		}
		files, err := GeneratePython(pm)
		if err != nil {
			t.Fatalf("schema %d: %v", i, err)
		}
		accepted++
		for _, name := range []string{"__init__.py", "types.py", "store.py"} {
			sources[fmt.Sprintf("%d/%s", i, name)] = string(files[name])
		}
		want[fmt.Sprintf("%d/types.py", i)] = pyTypesDecls(pm)
		want[fmt.Sprintf("%d/store.py", i)] = pyStoreDecls(pm)
	}
	if accepted < 10 {
		t.Fatalf("only %d schemas of %d accepted", accepted, len(schemas))
	}
	in, _ := json.Marshal(sources)
	cmd := exec.Command(py, "-c", pyCheckScript)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for name := range sources {
		if e, ok := got[name]["error"]; ok {
			t.Errorf("generated Python does not parse: %v\n%s", e, sources[name])
		}
	}
	for name, w := range want {
		wj, _ := json.Marshal(w)
		var wv, gv any
		json.Unmarshal(wj, &wv)
		gj, _ := json.Marshal(got[name])
		json.Unmarshal(gj, &gv)
		if diff := cmp.Diff(wv, gv); diff != "" {
			t.Errorf("%s declares what the model does not (-want +got):\n%s", name, diff)
		}
	}
	t.Logf("parsed the Python of %d schemas", accepted)
}

// pyTypesDecls is what types.py must declare for pm.
func pyTypesDecls(pm *PyModel) map[string]any {
	top := []string{}
	classes := map[string][]string{}
	for _, t := range pm.Types {
		top = append(top, t.PyName)
		var members []string
		for _, f := range t.Fields {
			members = append(members, f.PyName)
		}
		classes[t.PyName] = append(members, "to_json", "from_json", "_obj", "_enc", "_dec")
	}
	return map[string]any{"top": top, "classes": classes}
}

// pyStoreDecls is what store.py must declare for pm.
func pyStoreDecls(pm *PyModel) map[string]any {
	top := []string{"PREFIX"}
	used := map[string]bool{}
	for _, e := range append(slices.Clone(pm.Queues), pm.Caches...) {
		used[e.Payload] = true
	}
	for _, t := range pm.Types {
		if used[t.PyName] {
			top = append(top, "_codec_"+t.PyName)
		}
	}
	queues, caches := []string{"__init__"}, []string{"__init__"}
	for _, q := range pm.Queues {
		top = append(top, q.VarName)
		queues = append(queues, q.PyName)
	}
	for _, c := range pm.Caches {
		top = append(top, c.VarName)
		caches = append(caches, c.PyName)
	}
	top = append(top, "Queues", "Caches", "Store")
	return map[string]any{"top": top, "classes": map[string][]string{
		"Queues": queues, "Caches": caches, "Store": {"queues", "caches", "__init__"},
	}}
}

// hostileSchemas try to turn schema text into Python code, or to take a
// name the generated code uses.
var hostileSchemas = []string{
	`version: 1
prefix: "p\"'''\"\"\":"
types:
  T:
    doc: "\"\"\" + __import__('os').system('x') + \"\"\"\n\\"
    fields:
      class: {type: string, doc: "x\n\"\"\"\nimport os\n#"}
      from_json: {type: "[]T", doc: "\\"}
      self: int
      str: "[]map[string]T"
      none: any
queues:
  import:
    key: "a:{self}:{async:int}:{cls}:'''\""
    payload: T
    doc: "'''\"\"\"; raise SystemExit\\"
  len: {key: "b:{lambda}", payload: T, delivery: at-least-once, shards: 3}
caches:
  type: {key: "{match}#{yield}", payload: T, ttl: none, doc: "\""}
`,
	`version: 1
types:
  None: {fields: {x: string}}
  "True": {fields: {a: None}}
`,
	`version: 1
types:
  None: {fields: {a: string, b: "[]None"}}
  Ellipsis: {fields: {c: None}, doc: "é 漢字 \U0001F600 tab\there"}
queues:
  q: {payload: None, key: "q:{id}"}
caches:
  c: {payload: Ellipsis, key: "c:{id}:{n:int}", ttl: 1500ms}
`,
}
