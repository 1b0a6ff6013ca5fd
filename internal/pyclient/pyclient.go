// Package pyclient runs the Python client's runtime (gen/python) from Go
// tests: it finds a python3 with redis-py and mypy, and assembles a Python
// package of the hand-written runtime files and the Lua scripts in a
// directory, as the generator lays them out.
package pyclient

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

// DefaultPython is Debian's python3, which has python3-redis (4.3) and
// python3-mypy; the python3 first in PATH may be another build without
// them. STORAGEGEN_PYTHON overrides it.
const DefaultPython = "/usr/bin/python3"

// Root returns the repository's root directory.
func Root() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Python returns the python3 to run the Python client with, after checking
// that it imports redis.asyncio and mypy. When it cannot, the test is
// skipped with the reason, except in CI (CI=true), where it fails:
// scripts/test.sh installs python3-redis and python3-mypy.
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("STORAGEGEN_PYTHON")
	if py == "" {
		py = DefaultPython
	}
	out, err := exec.Command(py, "-c", "import redis.asyncio, mypy; print(redis.__version__)").CombinedOutput()
	if err != nil {
		msg := py + " cannot import redis.asyncio and mypy (" + strings.TrimSpace(string(out)) + "): " +
			"run ./scripts/test.sh (it installs python3-redis and python3-mypy with apt-get), " +
			"or set STORAGEGEN_PYTHON to a python3 that has redis-py >= 4.2 and mypy"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
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
