package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// directiveArgs returns the storagegen arguments of the go:generate line
// in the generate.go at path.
func directiveArgs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if args, ok := strings.CutPrefix(line, "//go:generate go tool storagegen "); ok {
			return strings.Fields(args)
		}
	}
	t.Fatalf("%s has no go:generate line for storagegen:\n%s", path, b)
	return nil
}

// TestInit: in a new module, init writes the three files; the directive's
// command line generates, passes -check, and lint finds nothing. The
// generated code is built for real by internal/readme's TestFirstHour.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/my-engine\n\ngo 1.26\n"), 0o644)
	t.Chdir(dir)

	code, stdout, stderr := runCmd(t, "init")
	if code != 0 || stderr != "" {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	want := "storagegen init: wrote schema.yaml, generate.go, storagegen.schema.json\n" +
		"storagegen init: next, go generate ./... writes generated/; import it as \"example.com/my-engine/generated\"\n"
	if stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	gen, _ := os.ReadFile("generate.go")
	for _, s := range []string{
		"// Package myengine holds the storage schema of this module.\n",
		"\npackage myengine\n",
		"\n//go:generate go tool storagegen -schema schema.yaml -out generated -doc STORAGE.md -jsonschema storagegen.schema.json\n",
	} {
		if !strings.Contains(string(gen), s) {
			t.Errorf("generate.go lacks %q:\n%s", s, gen)
		}
	}
	schema, _ := os.ReadFile("schema.yaml")
	for _, s := range []string{"# yaml-language-server: $schema=./storagegen.schema.json\n", "prefix: \"myengine:\"\n", "delivery: at-least-once\n", "ttl: 24h\n"} {
		if !strings.Contains(string(schema), s) {
			t.Errorf("schema.yaml lacks %q:\n%s", s, schema)
		}
	}
	if js, err := os.ReadFile("storagegen.schema.json"); err != nil || !strings.Contains(string(js), `"title": "storagegen schema"`) {
		t.Errorf("storagegen.schema.json: %v", err)
	}

	args := directiveArgs(t, "generate.go")
	if code, stdout, stderr := runCmd(t, args...); code != 0 || stdout != "storagegen: 2 queues, 1 cache, 1 type → generated/\n" {
		t.Fatalf("the directive: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	if code, _, stderr := runCmd(t, append([]string{"-check"}, args...)...); code != 0 {
		t.Errorf("-check after the directive: exit %d\n%s", code, stderr)
	}
	if code, stdout, _ := runCmd(t, "lint"); code != 0 || stdout != "storagegen lint: 0 warnings, 0 info\n" {
		t.Errorf("lint of the starter: exit %d\n%s", code, stdout)
	}
}

// TestInitRefuses: init overwrites nothing unless -force.
func TestInitRefuses(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCmd(t, "init", "-dir", dir); code != 0 {
		t.Fatal(stderr)
	}
	mine := []byte("version: 1 # mine\n")
	os.WriteFile(filepath.Join(dir, "schema.yaml"), mine, 0o644)
	os.Remove(filepath.Join(dir, "storagegen.schema.json"))

	code, stdout, stderr := runCmd(t, "init", "-dir", dir)
	want := "storagegen init: " + filepath.Join(dir, "schema.yaml") + ", " + filepath.Join(dir, "generate.go") + " already exist; nothing was written (-force overwrites)\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("init over existing files: exit %d, stdout %q, stderr %q; want exit 1 with %q", code, stdout, stderr, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "schema.yaml")); string(b) != string(mine) {
		t.Error("init overwrote schema.yaml")
	}
	if _, err := os.Stat(filepath.Join(dir, "storagegen.schema.json")); !os.IsNotExist(err) {
		t.Error("a refused init wrote storagegen.schema.json")
	}

	if code, _, stderr := runCmd(t, "init", "-dir", dir, "-force"); code != 0 {
		t.Fatalf("init -force: exit %d, %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "schema.yaml")); string(b) == string(mine) {
		t.Error("init -force did not overwrite schema.yaml")
	}
}

// TestInitFlags: the file names, the package, leaving out the catalogue and
// the editor schema, and a directory whose package has files already.
func TestInitFlags(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("// Command engine runs.\npackage main\n\nfunc main() {}\n"), 0o644)
	code, _, stderr := runCmd(t, "init", "-dir", dir, "-schema", "storage.yaml", "-out", "internal/db", "-package", "store", "-doc", "", "-jsonschema", "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	gen, _ := os.ReadFile(filepath.Join(dir, "generate.go"))
	if !strings.HasPrefix(string(gen), "// storage.yaml declares") || strings.Contains(string(gen), "// Package") || !strings.Contains(string(gen), "\n\npackage main\n") {
		t.Errorf("generate.go should join package main with no package doc of its own:\n%s", gen)
	}
	if !strings.HasSuffix(string(gen), "\n//go:generate go tool storagegen -schema storage.yaml -out internal/db\n") {
		t.Errorf("generate.go's directive:\n%s", gen)
	}
	schema, err := os.ReadFile(filepath.Join(dir, "storage.yaml"))
	if err != nil || strings.Contains(string(schema), "yaml-language-server") || !strings.Contains(string(schema), "\npackage: store ") || strings.Contains(string(schema), `prefix: "main:"`) {
		t.Errorf("storage.yaml (%v): want package store, no editor schema line, and a prefix that is not the package main:\n%s", err, schema)
	}
	if _, err := os.Stat(filepath.Join(dir, "storagegen.schema.json")); !os.IsNotExist(err) {
		t.Error("-jsonschema \"\" wrote storagegen.schema.json")
	}

	t.Chdir(dir)
	if code, _, stderr := runCmd(t, directiveArgs(t, "generate.go")...); code != 0 {
		t.Fatalf("the directive: exit %d, %s", code, stderr)
	}
	if store, _ := os.ReadFile(filepath.Join("internal", "db", "store.go")); !strings.Contains(string(store), "\npackage store\n") {
		t.Error("the generated code is not package store")
	}
}

func TestInitBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-package", "Not-A-Name"}, 1, "is not a valid Go package name"},
		{[]string{"-schema", "/abs/schema.yaml"}, 2, "want a path relative to -dir"},
		{[]string{"-out", ""}, 2, "may not be empty"},
		{[]string{"extra"}, 2, "unexpected argument"},
	} {
		code, _, stderr := runCmd(t, append([]string{"init", "-dir", dir}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("init %q: exit %d, stderr %q; want exit %d with %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed init wrote %d files", len(entries))
	}
}

// TestInitPaths: the editor-schema line points at the JSON Schema from the
// schema file's own directory, an -out that is no package name gets a
// package key in the schema, and a directory outside any module gets a
// warning, since go tool needs one.
func TestInitPaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, _, stderr := runCmd(t, "init", "-schema", "config/schema.yaml", "-out", "store-v2")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: no go.mod holds .") {
		t.Errorf("no warning outside a module; stderr %q", stderr)
	}
	src, err := os.ReadFile(filepath.Join(dir, "config", "schema.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(src), "\n"); first != "# yaml-language-server: $schema=../storagegen.schema.json" {
		t.Errorf("first line %q: the editor schema is at ../storagegen.schema.json from config/", first)
	}
	if !strings.Contains(string(src), "\npackage: storev2 ") {
		t.Errorf("no package key for -out store-v2 in:\n%s", src)
	}
	if code, _, stderr := runCmd(t, directiveArgs(t, "generate.go")...); code != 0 {
		t.Fatalf("go generate's command line: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "store-v2", "store.go")); err != nil {
		t.Error(err)
	}
}
