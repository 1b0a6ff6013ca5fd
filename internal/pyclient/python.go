package pyclient

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// DefaultPython is Debian's python3, which has python3-redis (4.3) and
// python3-mypy; the python3 first in PATH may be another build without
// them. STORAGEGEN_PYTHON overrides it.
const DefaultPython = "/usr/bin/python3"

// pythonCheck is the probe Python runs once per process: the version the
// generated code needs (3.10: kw_only dataclasses), redis.asyncio
// (redis-py 4.2 or later) and mypy.
const pythonCheck = `import sys
assert sys.version_info >= (3, 10), "Python " + sys.version.split()[0] + " is older than 3.10"
import redis.asyncio, mypy`

var probed sync.Map // interpreter path -> error text ("" when usable)

// Python returns the python3 every test of the repository runs the Python
// client with: STORAGEGEN_PYTHON, or DefaultPython. When that interpreter
// is missing, older than 3.10, or cannot import redis.asyncio and mypy,
// the test is skipped with the reason and how to fix it, except when CI is
// set (to anything), where it fails: CI must run every test, and
// scripts/test.sh installs python3-redis and python3-mypy.
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("STORAGEGEN_PYTHON")
	if py == "" {
		py = DefaultPython
	}
	v, ok := probed.Load(py)
	if !ok {
		msg := ""
		if out, err := exec.Command(py, "-c", pythonCheck).CombinedOutput(); err != nil {
			msg = fmt.Sprintf("%s cannot run the Python client's tests (%v: %s): run ./scripts/test.sh "+
				"(it installs python3, python3-redis and python3-mypy with apt-get), or set STORAGEGEN_PYTHON "+
				"to a python3 (3.10 or later) that has redis-py >= 4.2 and mypy", py, err, lastLine(out))
		}
		v, _ = probed.LoadOrStore(py, msg)
	}
	if msg := v.(string); msg != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

func lastLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
