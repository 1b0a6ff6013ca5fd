package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/storagegen/storagegen/gen"
)

// runInit writes a starter schema, the go:generate directive file and the
// editor schema, so that a module that has just added storagegen as a tool
// has something that generates, passes -check and lint, and compiles.
func runInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", "[-dir DIR] [-schema FILE] [-out DIR] [-package NAME] [-doc FILE] [-jsonschema FILE] [-force]", stderr)
	dir := fs.String("dir", ".", "the `directory` to write into; generate.go joins the Go package there")
	schema := fs.String("schema", "schema.yaml", "the schema `file` to write, relative to -dir")
	out := fs.String("out", "generated", "the `directory` go generate writes the code into, relative to -dir")
	pkg := fs.String("package", "", "the generated Go package `name`, written into the schema (default: the base name of -out)")
	doc := fs.String("doc", "STORAGE.md", "the catalogue `file` go generate writes, relative to -dir; empty for none")
	jsonSchema := fs.String("jsonschema", "storagegen.schema.json", "the editor schema `file`, written now and by go generate, relative to -dir; empty for none")
	force := fs.Bool("force", false, "overwrite files that exist")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	for _, f := range []struct{ name, value string }{{"schema", *schema}, {"out", *out}, {"doc", *doc}, {"jsonschema", *jsonSchema}} {
		if filepath.IsAbs(f.value) || strings.ContainsAny(f.value, "\"`\n") {
			fmt.Fprintf(stderr, "storagegen init: -%s %q: want a path relative to -dir, without quotes or newlines\n", f.name, f.value)
			return 2
		}
	}
	if *schema == "" || *out == "" {
		fmt.Fprintln(stderr, "storagegen init: -schema and -out may not be empty")
		return 2
	}

	dirPkg, modPath, err := packageOf(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen init: %v\n", err)
		return 1
	}
	s := starter{Package: *pkg, Prefix: dirPkg.app + ":"}
	if base := filepath.Base(filepath.Clean(*out)); *pkg == "" && !token.IsIdentifier(base) {
		// -out store-v2: the directory's name is no package name, so the
		// schema names one.
		s.Package = identifier(base)
	}
	if *jsonSchema != "" {
		// yaml-language-server resolves $schema from the schema file's
		// own directory, not from -dir.
		rel, err := filepath.Rel(filepath.Dir(filepath.Clean(*schema)), filepath.Clean(*jsonSchema))
		if err != nil {
			fmt.Fprintf(stderr, "storagegen init: -jsonschema %q: %v\n", *jsonSchema, err)
			return 2
		}
		if rel = filepath.ToSlash(rel); !strings.HasPrefix(rel, "../") {
			rel = "./" + rel
		}
		s.JSONSchema = rel
	}
	schemaSrc := s.schema()
	// A -package or -out that makes no valid package name is caught here,
	// as go generate would catch it, before anything is written.
	if _, err := gen.Load(*schema, schemaSrc, gen.CheckOptions{DefaultPackage: filepath.Base(filepath.Clean(*out))}); err != nil {
		fmt.Fprintf(stderr, "storagegen init: with these flags the starter schema would not generate:\n%v\n", err)
		return 1
	}
	genArgs := []string{"-schema", *schema, "-out", *out}
	if *doc != "" {
		genArgs = append(genArgs, "-doc", *doc)
	}
	if *jsonSchema != "" {
		genArgs = append(genArgs, "-jsonschema", *jsonSchema)
	}
	type file struct {
		name string // relative to -dir
		data []byte
	}
	files := []file{
		{*schema, schemaSrc},
		{"generate.go", directiveFile(dirPkg, *schema, *out, genArgs)},
	}
	if *jsonSchema != "" {
		files = append(files, file{*jsonSchema, gen.JSONSchema()})
	}

	if !*force {
		var existing []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(*dir, f.name)); err == nil {
				existing = append(existing, filepath.Join(*dir, f.name))
			} else if !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stderr, "storagegen init: %v\n", err)
				return 1
			}
		}
		if len(existing) > 0 {
			verb := "exist"
			if len(existing) == 1 {
				verb = "exists"
			}
			fmt.Fprintf(stderr, "storagegen init: %s already %s; nothing was written (-force overwrites)\n", strings.Join(existing, ", "), verb)
			return 1
		}
	}
	var names []string
	for _, f := range files {
		p := filepath.Join(*dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintf(stderr, "storagegen init: %v\n", err)
			return 1
		}
		if err := writeFile(p, f.data); err != nil {
			fmt.Fprintf(stderr, "storagegen init: %v\n", err)
			return 1
		}
		names = append(names, filepath.ToSlash(p))
	}
	fmt.Fprintf(stdout, "storagegen init: wrote %s\n", strings.Join(names, ", "))
	next := "storagegen init: next, go generate ./... writes " + filepath.ToSlash(filepath.Join(*dir, *out)) + "/"
	if imp := importPath(modPath, dirPkg.rel, *out); imp != "" {
		next += "; import it as " + strconv.Quote(imp)
	}
	fmt.Fprintln(stdout, next)
	if modPath == "" {
		fmt.Fprintln(stderr, "storagegen init: warning: no go.mod holds "+filepath.ToSlash(*dir)+"; go tool storagegen runs only in a module that has it as a tool (go mod init, then go get -tool github.com/storagegen/storagegen/cmd/storagegen)")
	}
	return 0
}

// dirPackage is the Go package of the directory init writes into.
type dirPackage struct {
	name     string // package clause of generate.go
	hasFiles bool   // the package has other files, so generate.go gives no package doc
	app      string // a name for the application, from the module path or the directory, for the key prefix
	rel      string // the directory relative to its module's root, "" if unknown
}

// packageOf finds the package name for generate.go in dir: the one its Go
// files already declare, else one made from the module path or the
// directory's name. It also returns the module path, when dir is in a
// module.
func packageOf(dir string) (dirPackage, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dirPackage{}, "", err
	}
	var p dirPackage
	modPath, modRoot := findModule(abs)
	if modRoot != "" {
		p.rel, _ = filepath.Rel(modRoot, abs)
	}
	entries, err := os.ReadDir(abs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return p, "", err
	}
	base := filepath.Base(abs)
	if modPath != "" {
		base = path.Base(path.Join(modPath, filepath.ToSlash(p.rel)))
		if majorVersionRE.MatchString(base) && p.rel == "." {
			base = path.Base(path.Dir(modPath)) // example.com/engine/v2 is package engine
		}
	}
	p.app = identifier(base)
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || n == "generate.go" {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(abs, n), nil, parser.PackageClauseOnly)
		if err != nil {
			continue // not Go that builds; go build will say so
		}
		p.name, p.hasFiles = f.Name.Name, true
		return p, modPath, nil
	}
	p.name = p.app
	return p, modPath, nil
}

var (
	moduleRE       = regexp.MustCompile(`(?m)^module\s+("[^"]*"|\S+)`)
	majorVersionRE = regexp.MustCompile(`^v[0-9]+$`)
)

// findModule returns the module path and root directory of the module
// that holds dir, or "" when there is none.
func findModule(dir string) (modPath, root string) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			m := moduleRE.FindSubmatch(b)
			if m == nil {
				return "", d
			}
			mp := string(m[1])
			if uq, err := strconv.Unquote(mp); err == nil {
				mp = uq
			}
			return mp, d
		}
		if filepath.Dir(d) == d {
			return "", ""
		}
	}
}

// identifier makes a package name of s: lower case letters, digits and
// underscores, not starting with a digit, not a keyword.
func identifier(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' && b.Len() > 0 || r == '_' && b.Len() > 0 {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if name == "" || token.IsKeyword(name) || name == "main" {
		return "app"
	}
	return name
}

// importPath is the import path of the generated package, or "" when it
// cannot be known (no module, or -dir outside it).
func importPath(modPath, rel, out string) string {
	if modPath == "" || rel == "" || strings.HasPrefix(rel, "..") {
		return ""
	}
	return path.Join(modPath, filepath.ToSlash(rel), filepath.ToSlash(out))
}

// directiveFile is generate.go: the package clause, what the schema is
// for, and the directive. When the package has other files, the comment is
// not a package doc, which is theirs to give.
func directiveFile(p dirPackage, schema, out string, genArgs []string) []byte {
	var b bytes.Buffer
	about := fmt.Sprintf(`// %s declares the module's Redis queues and caches, with their
// payload types, and go generate writes typed Go for them into the
// package in %s/, over github.com/storagegen/storagegen/runtime.
`, filepath.ToSlash(schema), filepath.ToSlash(out))
	if p.hasFiles {
		fmt.Fprintf(&b, "%s\npackage %s\n\n", about, p.name)
	} else {
		fmt.Fprintf(&b, "// Package %s holds the storage schema of this module.\n//\n%spackage %s\n\n", p.name, about, p.name)
	}
	b.WriteString(`// After editing the schema, run go generate ./... and commit what it
// writes. CI runs the same command line with -check, which fails when the
// files and the schema disagree.
//
`)
	quoted := make([]string, len(genArgs))
	for i, a := range genArgs {
		quoted[i] = a
		if strings.ContainsAny(a, " \t") {
			quoted[i] = strconv.Quote(a) // go generate reads Go strings
		}
	}
	fmt.Fprintf(&b, "//go:generate go tool storagegen %s\n", strings.Join(quoted, " "))
	return b.Bytes()
}

// starter is the schema init writes: small, commented, one of each kind
// (an at-most-once queue, an at-least-once queue, a cache, a type), and
// clean under lint, so that the first lint finding a user sees is about
// their own change.
type starter struct {
	Package    string // the package key, "" to leave it to -out
	Prefix     string // the prefix key
	JSONSchema string // the editor schema's path from the schema's directory ("./x.json"), "" for none
}

func (s starter) schema() []byte {
	var b bytes.Buffer
	if s.JSONSchema != "" {
		// yaml-language-server resolves the path from the schema's directory.
		fmt.Fprintf(&b, "# yaml-language-server: $schema=%s\n#\n", s.JSONSchema)
	}
	b.WriteString(`# The storage schema of this module: every Redis queue and cache it uses,
# with its payload type. After editing it, run go generate ./... (see
# generate.go) and commit what it writes. Every key is described at
# https://github.com/storagegen/storagegen#the-schema
version: 1
`)
	if s.Package != "" {
		fmt.Fprintf(&b, "package: %s   # the generated Go package\n", s.Package)
	}
	fmt.Fprintf(&b, `
# Text before every key, so that this application's keys stay apart from
# other applications' on the same server.
prefix: %q

# Payload types: Go structs in the generated package, stored as JSON.
types:
  Task:
    doc: A unit of work, and what became of it.
    fields:
      id: string
      kind: string
      input: map[string]any
      created_at: time.Time
      error: {type: string, optional: true, doc: Set when the task failed.}

# Queues are FIFO. An accessor takes one argument per {placeholder} of the
# key (the key defaults to the queue's name); separate placeholders with
# ':', which IDs rarely contain, so keys stay readable.
queues:
  # At-most-once, the default: Pop takes an item off the queue, so an item
  # whose consumer crashes is lost. One round trip per item.
  events:
    doc: Notifications about tasks, by topic; one lost in a crash is not missed.
    key: "events:{topic}"
    payload: Task
    lint_ignore: [at-most-once]   # lint would remind us of the above

  # At-least-once: Receive leases an item and Ack removes it; an item whose
  # consumer crashes comes back when its lease runs out, and one that keeps
  # failing becomes a dead letter.
  tasks:
    doc: Work to do; every task is handled at least once.
    payload: Task
    delivery: at-least-once
    lease: 30s          # how long a receiver holds an item before it comes back
    max_deliveries: 5   # deliveries before a failing item becomes a dead letter

# Caches hold one value per key, for a ttl (required: a duration, or none).
caches:
  task_state:
    doc: The latest state of a task, by task ID.
    key: "task:{task_id}"
    payload: Task
    ttl: 24h
`, s.Prefix)
	return b.Bytes()
}
