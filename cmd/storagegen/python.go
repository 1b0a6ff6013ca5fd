package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/storagegen/storagegen/gen"
)

// runPython is storagegen python: write (or -check) the Python package
// generated from the schema, on its own.
func runPython(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storagegen python", flag.ContinueOnError)
	fs.SetOutput(stderr)
	schema := fs.String("schema", "schema.yaml", "the schema `file`")
	out := fs.String("out", "", "the Python package `directory`; its base name is the package name (required)")
	check := fs.Bool("check", false, "write nothing; exit 1 if -out does not match the schema")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: storagegen python [-check] -schema FILE -out DIR\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *out == "" {
		if *out == "" {
			fmt.Fprintln(stderr, "storagegen python: -out is required")
		} else {
			fmt.Fprintf(stderr, "storagegen python: unexpected argument %q\n", fs.Arg(0))
		}
		fs.Usage()
		return 2
	}
	if code := checkPythonDir(*out, stderr); code != 0 {
		return code
	}
	src, err := os.ReadFile(*schema)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return 1
	}
	// The Go package name plays no part in the Python output; the schema's
	// own package, when set, is still checked.
	m, err := gen.Load(*schema, src, gen.CheckOptions{DefaultPackage: "generated"})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	files, code := pythonOutput(m, *out, stderr)
	if code != 0 {
		return code
	}
	if *check {
		problems := checkPyDir(*out, files, []byte(gen.PythonHeader(m.Schema)+"\n"), "from "+filepath.Base(*schema))
		return reportCheck(problems, stderr)
	}
	if err := writePyDir(*out, files, []byte(gen.PythonHeader(m.Schema)+"\n")); err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "storagegen: %s, %s, %s → %s/ (Python)\n",
		plural(len(m.Queues), "queue"), plural(len(m.Caches), "cache"), plural(len(m.Types), "type"), filepath.ToSlash(filepath.Clean(*out)))
	return 0
}

// checkPythonDir refuses, with exit status 2, an output directory whose
// base name is no Python package name.
func checkPythonDir(dir string, stderr io.Writer) int {
	if why := gen.PythonPackageProblem(filepath.Base(filepath.Clean(dir))); why != "" {
		fmt.Fprintf(stderr, "storagegen: -python/-out %s: %s\n", dir, why)
		return 2
	}
	return 0
}

// pythonOutput generates the Python package for the directory dir, or
// prints why the schema has no Python form (exit status 1).
func pythonOutput(m *gen.Model, dir string, stderr io.Writer) (map[string][]byte, int) {
	pm, err := gen.PythonModel(m, filepath.Base(filepath.Clean(dir)))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	files, err := gen.GeneratePython(pm)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return nil, 1
	}
	return files, 0
}

// reportCheck prints the problems -check found; 1 when there are any.
func reportCheck(problems []problem, stderr io.Writer) int {
	if len(problems) == 0 {
		return 0
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "storagegen: %s\n%s", p.line, p.diff)
	}
	fmt.Fprintln(stderr, "storagegen: run go generate ./... to update them")
	return 1
}

// pyStale lists the files of a Python package directory that earlier runs
// wrote and this one does not: .py files that start with header, and any
// .lua file under lua/, which belongs to the generator. Slash-separated,
// relative to dir.
func pyStale(dir string, files map[string][]byte, header []byte) ([]string, error) {
	var names []string
	for _, sub := range []string{"", "lua"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			if sub != "" {
				name = sub + "/" + name
			}
			if e.IsDir() || files[name] != nil {
				continue
			}
			switch {
			case sub == "lua" && strings.HasSuffix(name, ".lua"):
				names = append(names, name)
			case sub == "" && strings.HasSuffix(name, ".py"):
				generated, err := startsWith(filepath.Join(dir, name), header)
				if err != nil {
					return nil, err
				}
				if generated {
					names = append(names, name)
				}
			}
		}
	}
	return names, nil
}

// checkPyDir is checkDir for a Python package directory.
func checkPyDir(dir string, files map[string][]byte, header []byte, from string) []problem {
	var problems []problem
	for _, name := range sortedNames(files) {
		problems = append(problems, checkFile(filepath.Join(dir, filepath.FromSlash(name)), files[name], from)...)
	}
	old, err := pyStale(dir, files, header)
	if err != nil {
		problems = append(problems, problem{line: err.Error()})
	}
	for _, name := range old {
		problems = append(problems, problem{line: filepath.Join(dir, filepath.FromSlash(name)) + ": stale (no longer generated)"})
	}
	return problems
}

// writePyDir is writeDir for a Python package directory.
func writePyDir(dir string, files map[string][]byte, header []byte) error {
	if err := os.MkdirAll(filepath.Join(dir, "lua"), 0o755); err != nil {
		return err
	}
	old, err := pyStale(dir, files, header)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(files) {
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(name)), files[name]); err != nil {
			return err
		}
	}
	for _, name := range old {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return err
		}
	}
	return nil
}
