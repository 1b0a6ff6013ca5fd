// Command storagegen generates typed Go access to Redis queues and caches
// from a YAML schema, and reviews changes to that schema.
//
// Usage:
//
//	storagegen -schema schema.yaml -out generated [-package NAME] [-doc STORAGE.md] [-jsonschema FILE] [-python DIR]
//	storagegen -check -schema schema.yaml -out generated [-doc STORAGE.md] [-jsonschema FILE] [-python DIR]
//	storagegen python [-check] -schema schema.yaml -out DIR
//	storagegen diff -against OLD|git:REF [-schema FILE] [-format text|json|github]
//	storagegen lint [-schema FILE] [-disable RULE,…] [-format text|json|github]
//	storagegen doc [-schema FILE] [-out STORAGE.md]
//	storagegen jsonschema [-out FILE]
//	storagegen init [-dir DIR] [-schema FILE] [-out DIR] [-package NAME] [-doc FILE] [-jsonschema FILE] [-force]
//	storagegen inspect [-schema FILE] [-redis URL] [-json] [queue|dead|reclaim|pause|resume|cache NAME [ARG=VALUE…]]
//	storagegen dashboard [-schema FILE] [-redis URL] [-listen 127.0.0.1:8080] [-allow-writes] [-token TOKEN]
//
// The first form writes the generated files into -out, removes files there
// that carry storagegen's "Code generated" header but are no longer
// generated (and no others), writes the catalogue (-doc) and the editor
// schema (-jsonschema) when asked, and prints a one-line summary. The
// second writes nothing and exits 1, listing each file that is missing,
// differs or is stale, with a unified diff under each one that differs
// (from the file on disk to what the schema makes; at most 200 lines a
// file); CI runs it so that generated code, catalogue and editor schema
// are always what the schema says.
//
// python writes (or, with -check, compares) only the Python package
// generated from the schema into -out, whose base name is the package
// name; -python DIR does the same beside the Go output of the first two
// forms. Its stale files are the .py files there that carry the Python
// form of the header and the .lua files under DIR/lua. A schema with a
// payload or field type that names a Go import path has no Python form:
// the Python run refuses it with its position.
//
// init starts a module on storagegen: it writes a commented starter
// schema.yaml, a generate.go holding the //go:generate go tool storagegen
// directive, and the editor schema, into -dir (default the current
// directory). It refuses, writing nothing, when any of them exists, unless
// -force. The starter generates, passes -check and lint, and compiles.
//
// inspect shows what is in Redis under the schema; dashboard serves the
// same as web pages (read-only unless -allow-writes; anything but a
// loopback -listen requires -token). The README's "Operating it" section
// describes both.
//
// diff lists every change against an older schema, each breaking or safe
// with the reason, and exits 1 when a breaking change is not allowed by an
// allow_breaking. lint reports what review tends to miss and exits 1 on a
// warning. doc writes the Markdown catalogue; jsonschema prints the JSON
// Schema of schema.yaml for editors.
//
// Flags of the first two forms:
//
//	-schema FILE      the schema (default schema.yaml)
//	-out DIR          the output directory (default generated)
//	-package NAME     the Go package name (default: the schema's package,
//	                  else the base name of -out)
//	-doc FILE         also write the catalogue to FILE
//	-jsonschema FILE  also write the JSON Schema to FILE
//	-python DIR       also write the Python package to DIR (its base name
//	                  is the Python package name)
//	-check            compare instead of writing
//
// Exit status: 0 on success, 1 for a bad schema (every problem is printed
// as FILE:LINE:COL: message), a failed check, a breaking change, a lint
// warning or a file init will not overwrite, 2 for bad flags.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/internal/linediff"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "diff":
			return runDiff(args[1:], stdout, stderr)
		case "lint":
			return runLint(args[1:], stdout, stderr)
		case "doc":
			return runDoc(args[1:], stdout, stderr)
		case "jsonschema":
			return runJSONSchema(args[1:], stdout, stderr)
		case "init":
			return runInit(args[1:], stdout, stderr)
		case "python":
			return runPython(args[1:], stdout, stderr)
		case "inspect":
			return runInspect(args[1:], stdout, stderr)
		case "dashboard":
			return runDashboard(args[1:], stdout, stderr)
		}
	}
	return runGenerate(args, stdout, stderr)
}

// runGenerate is the form go:generate runs: write (or -check) the
// generated code, and the catalogue and editor schema when asked.
func runGenerate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storagegen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	schema := fs.String("schema", "schema.yaml", "the schema `file`")
	out := fs.String("out", "generated", "the output `directory`")
	pkg := fs.String("package", "", "the Go package `name` (default: the schema's package, else the base name of -out)")
	doc := fs.String("doc", "", "also write the Markdown catalogue to `file` (storagegen doc)")
	jsonSchema := fs.String("jsonschema", "", "also write the JSON Schema for editors to `file` (storagegen jsonschema)")
	python := fs.String("python", "", "also write the Python package to `directory` (storagegen python)")
	check := fs.Bool("check", false, "write nothing; exit 1 if -out (and -doc, -jsonschema, -python) do not match the schema")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: storagegen [-check] -schema FILE -out DIR [-package NAME] [-doc FILE] [-jsonschema FILE] [-python DIR]\n")
		fmt.Fprintf(stderr, "       storagegen diff|lint|doc|jsonschema|init|python|inspect|dashboard -h\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "storagegen: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *python != "" {
		if code := checkPythonDir(*python, stderr); code != 0 {
			return code
		}
	}

	src, err := os.ReadFile(*schema)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return 1
	}
	m, err := gen.Load(*schema, src, gen.CheckOptions{Package: *pkg, DefaultPackage: filepath.Base(filepath.Clean(*out))})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	files, err := gen.Generate(m)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return 1
	}
	header := []byte("// " + gen.Header(m.Schema) + "\n")
	var pyFiles map[string][]byte
	pyHeader := []byte(gen.PythonHeader(m.Schema) + "\n")
	if *python != "" {
		var code int
		if pyFiles, code = pythonOutput(m, *python, stderr); code != 0 {
			return code
		}
	}
	extra := map[string][]byte{} // path → contents, beside -out
	if *doc != "" {
		extra[*doc] = gen.Catalogue(m)
	}
	if *jsonSchema != "" {
		extra[*jsonSchema] = gen.JSONSchema()
	}
	if *check {
		from := "from " + filepath.Base(*schema)
		problems := checkDir(*out, files, header, from)
		for _, path := range sortedNames(extra) {
			problems = append(problems, checkFile(path, extra[path], from)...)
		}
		if pyFiles != nil {
			problems = append(problems, checkPyDir(*python, pyFiles, pyHeader, from)...)
		}
		return reportCheck(problems, stderr)
	}
	if err := writeDir(*out, files, header); err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return 1
	}
	for _, path := range sortedNames(extra) {
		if err := writeFile(path, extra[path]); err != nil {
			fmt.Fprintf(stderr, "storagegen: %v\n", err)
			return 1
		}
	}
	if pyFiles != nil {
		if err := writePyDir(*python, pyFiles, pyHeader); err != nil {
			fmt.Fprintf(stderr, "storagegen: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "storagegen: %s, %s, %s → %s/\n",
		plural(len(m.Queues), "queue"), plural(len(m.Caches), "cache"), plural(len(m.Types), "type"), filepath.ToSlash(filepath.Clean(*out)))
	if *python != "" {
		fmt.Fprintf(stdout, "storagegen: Python package → %s/\n", filepath.ToSlash(filepath.Clean(*python)))
	}
	return 0
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// stale lists the .go files in dir that start with header but are not in
// files: earlier output that the schema no longer produces.
func stale(dir string, files map[string][]byte, header []byte) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || files[e.Name()] != nil {
			continue
		}
		generated, err := startsWith(filepath.Join(dir, e.Name()), header)
		if err != nil {
			return nil, err
		}
		if generated {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// startsWith reports whether the file at path begins with prefix, reading
// no more than that.
func startsWith(path string, prefix []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, len(prefix))
	if _, err := io.ReadFull(f, buf); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return false, nil // shorter than the header
	} else if err != nil {
		return false, err
	}
	return bytes.Equal(buf, prefix), nil
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// A problem is one way in which the files on disk differ from what the
// schema makes: a line naming the file, and for a file whose contents
// differ, the unified diff from the one on disk to the wanted one.
type problem struct {
	line string
	diff []byte
}

// maxDiffLines bounds the diff shown for one file: enough for any edit a
// reviewer reads line by line, while a file regenerated after a large
// schema change does not flood the CI log; go generate shows the rest.
const maxDiffLines = 200

// checkDir lists how dir differs from files: missing, differing and stale
// files. from names the source of the wanted contents in diff headers.
func checkDir(dir string, files map[string][]byte, header []byte, from string) []problem {
	var problems []problem
	for _, name := range sortedNames(files) {
		problems = append(problems, checkFile(filepath.Join(dir, name), files[name], from)...)
	}
	old, err := stale(dir, files, header)
	if err != nil {
		problems = append(problems, problem{line: err.Error()})
	}
	for _, name := range old {
		problems = append(problems, problem{line: filepath.Join(dir, name) + ": stale (no longer generated)"})
	}
	return problems
}

// checkFile says how the file at path differs from want, if it does, with
// the diff.
func checkFile(path string, want []byte, from string) []problem {
	got, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []problem{{line: path + ": missing"}}
	case err != nil:
		return []problem{{line: fmt.Sprintf("%s: %v", path, err)}}
	case !bytes.Equal(got, want):
		name := filepath.ToSlash(path)
		return []problem{{
			line: path + ": differs from the schema",
			diff: linediff.Unified(name+" (on disk)", name+" ("+from+")", got, want, maxDiffLines),
		}}
	}
	return nil
}

// writeDir writes each file through a temporary file and a rename, so that
// a failed run never leaves half a file, then removes stale output.
func writeDir(dir string, files map[string][]byte, header []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := stale(dir, files, header)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(files) {
		if err := writeFile(filepath.Join(dir, name), files[name]); err != nil {
			return err
		}
	}
	for _, name := range old {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes b to path through a temporary file and a rename, and
// leaves an unchanged file untouched, for build caches.
func writeFile(path string, b []byte) error {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, b) {
		return nil
	}
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
