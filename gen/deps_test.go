package gen

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoRedisInTheGenerator checks that the generator links neither the
// runtime nor go-redis: it shares the key space with the runtime through
// internal/keyspace, which has no Redis dependency. (The command links
// them since it has storagegen inspect, which talks to Redis.)
func TestNoRedisInTheGenerator(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "github.com/storagegen/storagegen/internal/keyspace") {
		t.Fatalf("go list -deps printed an unlikely list:\n%s", out)
	}
	for _, dep := range deps {
		if strings.Contains(dep, "go-redis") || dep == "github.com/storagegen/storagegen/runtime" {
			t.Errorf("gen depends on %s", dep)
		}
	}
}
