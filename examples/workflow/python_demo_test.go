package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/storagegen/storagegen/internal/pyclient"
	"github.com/storagegen/storagegen/internal/redistest"
)

// TestPythonDemo runs examples/python/demo.py, as the README says, against
// a redis-server.
func TestPythonDemo(t *testing.T) {
	py := pyclient.Python(t)
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Twice on one server, as a reader of the README runs it again: the
	// second run's job must go through too, not be taken for a duplicate
	// of the first's.
	for run := 1; run <= 2; run++ {
		cmd := exec.Command(py, "../python/demo.py")
		cmd.Env = append(os.Environ(), "REDIS_URL="+srv.URL(0))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), "done\n") || !strings.Contains(string(out), "reader node_8 <- popped row 3 from node_5 (run run-1)") ||
			!strings.Contains(string(out), "executor <- job flow_7, delivery 1") {
			t.Fatalf("demo.py, run %d: %v\n%s", run, err, out)
		}
	}
}
