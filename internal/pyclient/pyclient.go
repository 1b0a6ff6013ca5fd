// Package pyclient runs the Python client from Go tests: Python finds the
// one python3 (with redis-py and mypy) that every test of the repository
// runs, and Assemble lays out a Python package of the hand-written runtime
// files (gen/python) and the Lua scripts in a directory, as the generator
// does. Its tests check the runtime against a golden corpus of keys, and
// Go and Python against each other through Redis (typed payloads, caches,
// crashes, the Python storage system's untyped keys).
package pyclient

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
)

// Root returns the repository's root directory.
func Root() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Assemble writes the package name into dir: the hand-written runtime
// files of gen/python (*.py), an empty __init__.py and py.typed, the
// runtime's Lua scripts in lua/, and extra, files of gen/python/tests
// copied into the package (such as teststore.py).
func Assemble(t testing.TB, dir, name string, extra ...string) string {
	t.Helper()
	pkg := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(pkg, "lua"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := Root()
	copyGlob(t, filepath.Join(root, "gen", "python", "*.py"), pkg)
	copyGlob(t, filepath.Join(root, "runtime", "lua", "*.lua"), filepath.Join(pkg, "lua"))
	for _, f := range extra {
		copyFile(t, filepath.Join(root, "gen", "python", "tests", f), filepath.Join(pkg, f))
	}
	for _, f := range []string{"__init__.py", "py.typed"} {
		if _, err := os.Stat(filepath.Join(pkg, f)); err != nil {
			if err := os.WriteFile(filepath.Join(pkg, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return pkg
}

// CopyTest copies gen/python/tests/<file> into dir.
func CopyTest(t testing.TB, dir, file string) {
	t.Helper()
	copyFile(t, filepath.Join(Root(), "gen", "python", "tests", file), filepath.Join(dir, file))
}

func copyGlob(t testing.TB, pattern, dir string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	for _, f := range files {
		copyFile(t, f, filepath.Join(dir, filepath.Base(f)))
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
