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
		{"-timeout", "0s"}, {"extra"}, {"-bogus"}, {"-memory", "-only", "push"}, {"-cluster", "-redis", "redis://127.0.0.1:1/0"}, {"-cluster", "-memory"},
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

// TestMemory runs -memory with few queues: the states it measures are the
// ones it says. An emptied at-most-once queue leaves no key; a loaded one
// is one list whose size grows with its items; an acked at-least-once
// queue leaves only its dedupe markers, one per Push call; and the
// used_memory rows cover every state.
func TestMemory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "memory.json")
	args := []string{"-memory", "-n", "50", "-c", "4", "-json", file}
	if u := os.Getenv("REDIS_URL"); u != "" {
		args = append(args, "-redis", u)
	}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep memReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the JSON does not read back: %v", err)
	}
	rows := map[string]memRow{}
	for _, r := range rep.Rows {
		rows[r.What] = r
		if !strings.Contains(stdout.String(), r.What) {
			t.Errorf("row %q is in the JSON, not in the table:\n%s", r.What, stdout.String())
		}
	}
	if r := rows["at-most-once queue, emptied by Pop"]; r.Keys != 0 || r.Bytes != 0 {
		t.Errorf("an emptied queue: %+v, want no key", r)
	}
	prev := int64(0)
	for _, n := range memSizes {
		r := rows["at-most-once queue, "+count(n)+" ready"]
		if r.Keys != 1 || r.Bytes <= prev {
			t.Errorf("%d items: %+v, want one key larger than %d bytes", n, r, prev)
		}
		prev = r.Bytes
		if acked := rows["at-least-once queue, "+count(n)+" acked (dedupe markers left)"]; acked.Keys != n {
			t.Errorf("%d items pushed one by one and acked: %d keys left, want %d markers", n, acked.Keys, n)
		}
		if leased := rows["at-least-once queue, "+count(n)+" leased"]; leased.Bytes <= rows["at-least-once queue, "+count(n)+" ready (one Push each)"].Bytes {
			t.Errorf("%d items: leased (%d bytes) should cost more than ready", n, leased.Bytes)
		}
	}
	if len(rep.Scales) != 5 {
		t.Fatalf("%d used_memory rows, want 5: %+v", len(rep.Scales), rep.Scales)
	}
	for _, s := range rep.Scales {
		if s.Queues != 50 {
			t.Errorf("%s: %d queues, want 50", s.What, s.Queues)
		}
	}
}

// TestClusterSmoke runs two workloads with -cluster: storagebench starts a
// cluster, both sides run on it (the plain one through a ClusterClient),
// and the server figures are summed over its primaries.
func TestClusterSmoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bench.json")
	args := []string{"-cluster", "-redis", "", "-n", "200", "-rounds", "1", "-c", "4", "-only", "^(push-c|consume-sh8)$", "-json", file}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "on a cluster of 3 primaries and 3 replicas") {
		t.Errorf("the header does not name the cluster:\n%s", stdout.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Workloads) != 2 {
		t.Fatalf("%d workloads, want 2", len(res.Workloads))
	}
	for _, w := range res.Workloads {
		for side, s := range map[string]sideResult{"typed": w.Typed, "plain": w.Plain} {
			if s.OpsPerSec <= 0 || s.ServerUsecPerItem <= 0 {
				t.Errorf("%s %s: figures not positive: %+v", w.ID, side, s)
			}
		}
	}
}
