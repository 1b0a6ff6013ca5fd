package main

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

// The asynq reference itself is not run here: it needs asynq, which the
// nested module fetches through the module proxy, and the suite runs
// without the network. These tests cover storagebench's side of it.

func TestAsynqFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-asynq", "-only", "^push-1$"}, &stdout, &stderr); code != 2 {
		t.Errorf("-asynq without the consume workload: exit %d, want 2; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "-asynq: the consume workload is not selected") {
		t.Errorf("stderr does not say why: %s", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("wrote to stdout: %s", stdout.String())
	}
}

func TestParseAsynqLine(t *testing.T) {
	good := `{"items":1000,"seconds":0.5,"items_per_sec":2000,"handler_seconds":0.49,"enqueue_seconds":0.1,"concurrency":8,"asynq_version":"v0.26.0"}`
	r, err := parseAsynqLine([]byte("\n"+good+"\n\n"), 1000, 8)
	if err != nil {
		t.Fatalf("a good line: %v", err)
	}
	if r.Items != 1000 || r.Seconds != 0.5 || r.ItemsPerSec != 2000 || r.HandlerSeconds != 0.49 || r.EnqueueSeconds != 0.1 || r.Version != "v0.26.0" {
		t.Errorf("read %+v", r)
	}
	if _, err := parseAsynqLine([]byte("some earlier line\n"+good), 1000, 8); err != nil {
		t.Errorf("only the last line counts: %v", err)
	}
	for name, out := range map[string]string{
		"empty":            "",
		"not JSON":         "done in 0.5s",
		"a line before":    good + "\nsomething else",
		"other n":          strings.Replace(good, `"items":1000`, `"items":999`, 1),
		"other c":          strings.Replace(good, `"concurrency":8`, `"concurrency":64`, 1),
		"zero seconds":     strings.Replace(good, `"seconds":0.5`, `"seconds":0`, 1),
		"no handler time":  strings.Replace(good, `"handler_seconds":0.49`, `"handler_seconds":0`, 1),
		"handler after":    strings.Replace(good, `"handler_seconds":0.49`, `"handler_seconds":0.6`, 1),
		"rate disagreeing": strings.Replace(good, `"items_per_sec":2000`, `"items_per_sec":2100`, 1),
	} {
		if _, err := parseAsynqLine([]byte(out), 1000, 8); err == nil {
			t.Errorf("%s: %q read without an error", name, out)
		}
	}
}

// TestAsynqRow: the ratio pairs round r of the typed Consume with round r
// of asynq, the figures are medians, and the row sits under the consume
// row of the table and in the JSON.
func TestAsynqRow(t *testing.T) {
	consume := workloadResult{ID: "consume", Name: "at-least-once Consume vs BRPOP, 8 goroutines", Items: 1000}
	for _, secs := range []float64{0.1, 0.05, 0.02} { // 10k, 20k, 50k items/s
		consume.Typed.add(&measurement{Items: 1000, Seconds: secs, ServerUsec: 5000})
		consume.Plain.add(&measurement{Items: 1000, Seconds: 0.1, ServerUsec: 1000})
	}
	consume.Ratios = []float64{1, 2, 5}
	consume.finish()
	a := &asynqResult{Name: asynqName(1000, 8), Items: 1000, Concurrency: 8, Command: "cd cmd/storagebench/asynqref && go run . -n 1000"}
	for _, ips := range []float64{2000, 1000, 5000} {
		a.Rounds = append(a.Rounds, asynqRound{Items: 1000, Seconds: 1000 / ips, ItemsPerSec: ips, ServerUsec: 30000, Version: "v0.26.0"})
	}
	a.finish(&consume)
	if want := []float64{5, 20, 10}; !slices.EqualFunc(a.Ratios, want, func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }) {
		t.Errorf("ratios %v, want %v", a.Ratios, want)
	}
	if a.Ratio != 10 || a.OpsPerSec != 2000 || a.ServerUsecPerItem != 30 || a.Version != "v0.26.0" {
		t.Errorf("ratio %v, items/s %v, server µs/item %v, version %q; want 10, 2000, 30, v0.26.0", a.Ratio, a.OpsPerSec, a.ServerUsecPerItem, a.Version)
	}

	res := &results{N: 1000, C: 8, Rounds: 3, Workloads: []workloadResult{consume}, Asynq: a}
	var out bytes.Buffer
	writeTable(&out, res)
	lines := strings.Split(out.String(), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "| at-least-once Consume") })
	if i < 0 || i+1 >= len(lines) {
		t.Fatalf("no consume row in:\n%s", out.String())
	}
	row := strings.Join(strings.Fields(lines[i+1]), " ")
	if want := "| asynq (reference): processing 1000 tasks, concurrency 8 | 20.0k | 2.0k | 10.00 | — | — | 5.00 / 30.00 |"; row != want {
		t.Errorf("the row under consume is\n%s\nwant\n%s", row, want)
	}
	if !strings.Contains(out.String(), "asynq v0.26.0 (reference row)") || !strings.Contains(out.String(), "go run . -n 1000") {
		t.Errorf("no note on the reference row in:\n%s", out.String())
	}

	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Asynq == nil || back.Asynq.Ratio != 10 || len(back.Asynq.Rounds) != 3 || back.Asynq.Rounds[1].ItemsPerSec != 1000 {
		t.Errorf("the JSON's asynq entry reads back as %+v", back.Asynq)
	}
}
