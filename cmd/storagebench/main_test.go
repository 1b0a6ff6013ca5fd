package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs the whole benchmark in-process with tiny figures: every
// workload's row is there with positive figures, and the JSON reads back.
// It starts its own redis-server as a user's run would, or uses REDIS_URL
// when the suite is given one. No figure is judged: machines are noisy.
func TestSmoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bench.json")
	args := []string{"-n", "200", "-rounds", "1", "-c", "8", "-json", file}
	if u := os.Getenv("REDIS_URL"); u != "" {
		args = append(args, "-redis", u)
	}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	table := stdout.String()
	for _, w := range workloads(config{c: 8}) {
		if !strings.Contains(table, "| "+w.name) {
			t.Errorf("no row for %q in:\n%s", w.name, table)
		}
	}
	if !strings.Contains(stderr.String(), "consume: plain, round 1/1") {
		t.Errorf("no progress line for the last run in stderr:\n%s", stderr.String())
	}

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("the JSON does not read back: %v", err)
	}
	if got, want := len(res.Workloads), len(workloads(config{c: 8})); got != want {
		t.Fatalf("%d workloads in the JSON, want %d", got, want)
	}
	for _, w := range res.Workloads {
		if w.NotBuilt != "" {
			continue
		}
		for side, s := range map[string]sideResult{"typed": w.Typed, "plain": w.Plain} {
			if s.OpsPerSec <= 0 || s.AllocsPerItem <= 0 || s.ServerUsecPerItem <= 0 || len(s.Rounds) != 1 {
				t.Errorf("%s %s: not all figures positive: %+v", w.ID, side, s)
			}
			if w.PerCall && (s.P50Micros <= 0 || s.P99Micros < s.P50Micros) {
				t.Errorf("%s %s: latencies p50 %v, p99 %v", w.ID, side, s.P50Micros, s.P99Micros)
			}
			if m := s.Rounds[0]; m.Items != 200 {
				t.Errorf("%s %s: %d items, want 200", w.ID, side, m.Items)
			}
		}
		if w.Ratio <= 0 {
			t.Errorf("%s: ratio %v", w.ID, w.Ratio)
		}
	}
	if res.RedisBenchmark == nil {
		t.Error("no redis-benchmark entry (figures or the reason it was skipped)")
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"}, {"-c", "-1"}, {"-rounds", "0"}, {"-only", "("}, {"-only", "nothing-matches-this"},
		{"-timeout", "0s"}, {"extra"}, {"-bogus"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr: %s", args, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %s", args, stdout.String())
		}
	}
}
