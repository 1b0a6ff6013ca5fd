package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/storagegen/storagegen/internal/redistest"
)

func TestDemo(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct{ name, url, first string }{
		{"embedded", "", "REDIS_URL is not set: using an embedded in-process server (miniredis)"},
		{"redis-server", srv.URL(0), "using the Redis server at REDIS_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), &out, tc.url, noTelemetry()); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if !strings.HasPrefix(lines[0], tc.first) {
				t.Errorf("first line %q, want it to start with %q", lines[0], tc.first)
			}
			for _, want := range []string{
				"queue flow:queue:queue_node_5_node_8",
				"reader node_8 ← popped row 3 from node_5 (run run-1)",
				"cache flow:cache:node_8_output = {status: succeeded, last_row: 3}, expires in 1h0m0s",
				"cache node_9: no output yet (a miss, not an error)",
				"cache flow:cache:flow_7:settings (local) read max_parallel [4 4 8 8]",
				"queue flow:queue:{jobs}: job pushed twice under one ID",
				"executor ← job flow_7, delivery 1: fails (executor busy); it comes back",
				"executor ← job flow_7, delivery 2: ran with 3 rows",
				"done",
			} {
				if !strings.Contains(out.String(), want+"\n") {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &out) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "REDIS_URL=redis://127.0.0.1:") {
		t.Errorf("serve printed %q", out.String())
	}
}

// span is what the test reads of stdouttrace's JSON of a span.
type span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Links       []struct {
		SpanContext struct{ TraceID, SpanID string }
	}
	Status               struct{ Code string }
	InstrumentationScope struct{ Name string }
}

// attr is stdoutmetric's and stdouttrace's JSON of an attribute.
type attr struct {
	Key   string
	Value struct{ Value any }
}

// collection is what the test reads of stdoutmetric's JSON of one
// collection.
type collection struct {
	Resource     []attr
	ScopeMetrics []struct {
		Scope   struct{ Name string }
		Metrics []struct {
			Name, Unit string
			Data       struct {
				DataPoints []struct {
					Attributes []attr
					Count      uint64 // a histogram's
					Value      any    // a sum's
				}
			}
		}
	}
}

// TestDemoOtel runs the demo with -otel stdout against a redis-server and
// decodes what it prints after the flow: one span per line, then the
// metrics of one collection.
func TestDemoOtel(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("REDIS_URL", srv.URL(0))
	var out, errw bytes.Buffer
	if code := mainArgs([]string{"-otel", "stdout"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, errw.String(), out.String())
	}
	flow, rest, ok := strings.Cut(out.String(), "done\n"+spansHeader+"\n")
	if !ok || !strings.Contains(flow, "executor ← job flow_7, delivery 2: ran with 3 rows\n") {
		t.Fatalf("no flow, then %q:\n%s", spansHeader, out.String())
	}
	spanText, metricText, ok := strings.Cut(rest, metricsHeader+"\n")
	if !ok {
		t.Fatalf("no %q:\n%s", metricsHeader, rest)
	}

	var spans []span
	byName := map[string][]span{}
	for line := range strings.Lines(spanText) {
		var s span
		if err := json.Unmarshal([]byte(line), &s); err != nil || s.Name == "" || s.SpanContext.TraceID == "" {
			t.Fatalf("not a span (%v): %s", err, line)
		}
		spans = append(spans, s)
		byName[s.Name] = append(byName[s.Name], s)
	}
	const demoScope = "github.com/storagegen/storagegen/examples/workflow"
	sched, exec := byName["scheduler submit flow"], byName["executor run flow"]
	if len(sched) != 1 || len(exec) != 2 || sched[0].InstrumentationScope.Name != demoScope {
		t.Fatalf("spans: %d scheduler, %d executor; want 1 and 2 of %s:\n%s", len(sched), len(exec), demoScope, spanText)
	}
	var failed int
	for _, e := range exec {
		if e.Status.Code == "Error" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d executor spans with status Error, want 1 (the first delivery)", failed)
	}
	// With the runtime's spans: the pushes are the scheduler's children,
	// and each executor span's parent is a process span linked to a push.
	bySpanID := map[string]span{}
	for _, s := range spans {
		bySpanID[s.SpanContext.SpanID] = s
	}
	for _, p := range byName["push jobs"] {
		if p.Parent.SpanID != sched[0].SpanContext.SpanID {
			t.Errorf("push jobs: parent %s, want the scheduler's span %s", p.Parent.SpanID, sched[0].SpanContext.SpanID)
		}
	}
	pushes := byName["push jobs"]
	if len(pushes) != 2 || len(byName["process jobs"]) != 2 {
		t.Fatalf("%d push jobs and %d process jobs spans, want 2 and 2:\n%s", len(pushes), len(byName["process jobs"]), spanText)
	}
	for _, e := range exec {
		// The executor's span is a child of Consume's process span, which
		// links to the first push (the second stored nothing: same ID).
		parent, ok := bySpanID[e.Parent.SpanID]
		if !ok || parent.Name != "process jobs" || len(parent.Links) != 1 ||
			parent.Links[0].SpanContext.SpanID != pushes[0].SpanContext.SpanID ||
			parent.Links[0].SpanContext.TraceID != sched[0].SpanContext.TraceID {
			t.Errorf("executor span's parent %+v, want process jobs linked to the first push span %s", parent, pushes[0].SpanContext.SpanID)
		}
	}

	dec := json.NewDecoder(strings.NewReader(metricText))
	var c collection
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("metrics: %v\n%s", err, metricText)
	}
	if dec.More() {
		t.Errorf("more than one collection:\n%s", metricText)
	}
	// name → the data points' attributes (key=value, sorted by key as
	// the SDK writes them) → count (histograms) or value (sums).
	got := map[string]map[string]float64{}
	for _, sm := range c.ScopeMetrics {
		if sm.Scope.Name != "github.com/storagegen/storagegen/runtime" {
			continue
		}
		for _, m := range sm.Metrics {
			got[m.Name] = map[string]float64{}
			for _, dp := range m.Data.DataPoints {
				var kv []string
				for _, a := range dp.Attributes {
					kv = append(kv, fmt.Sprint(a.Key, "=", a.Value.Value))
				}
				v := float64(dp.Count)
				if f, ok := dp.Value.(float64); ok {
					v = f
				}
				got[m.Name][strings.Join(kv, ",")] = v
			}
		}
	}
	const jobsAttrs = "messaging.destination.name=jobs,messaging.operation.name=%s,messaging.operation.type=%s,messaging.system=storagegen,outcome=%s,storagegen.kind=reliable_queue,storagegen.name=jobs,storagegen.operation=%s"
	for _, w := range []struct {
		metric, attrs string
		want          float64
	}{
		{"storagegen.operation.duration", fmt.Sprintf(jobsAttrs, "push", "send", "ok", "push"), 2},
		{"storagegen.items", fmt.Sprintf(jobsAttrs, "push", "send", "ok", "push"), 2},
		{"storagegen.operation.duration", fmt.Sprintf(jobsAttrs, "nack", "settle", "ok", "nack"), 1},
		{"storagegen.operation.duration", fmt.Sprintf(jobsAttrs, "ack", "settle", "ok", "ack"), 1},
		{"storagegen.operation.duration", "outcome=miss,storagegen.kind=cache,storagegen.name=node_output,storagegen.operation=get", 1},
	} {
		if v, ok := got[w.metric][w.attrs]; !ok || v != w.want {
			t.Errorf("%s{%s} = %v (present %v), want %v; have %v", w.metric, w.attrs, v, ok, w.want, got[w.metric])
		}
	}
	if v := got["storagegen.queue.end_to_end.duration"]["messaging.destination.name=jobs,messaging.system=storagegen,storagegen.kind=reliable_queue,storagegen.name=jobs"]; v != 1 {
		t.Errorf("storagegen.queue.end_to_end.duration of jobs: %v values, want 1 (the ack); have %v", v, got["storagegen.queue.end_to_end.duration"])
	}
	if len(got["storagegen.batch.size"]) == 0 {
		t.Errorf("no storagegen.batch.size: %v", got)
	}
}

// TestDemoUsage: an unknown -otel value is a usage error naming the
// values accepted; nothing runs.
func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{{"-otel", "jaeger"}, {"-otel=STDOUT"}, {"extra"}, {"-nope"}} {
		var out, errw bytes.Buffer
		if code := mainArgs(args, &out, &errw); code != 2 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q; want 2 and nothing", args, code, out.String())
		}
		if args[0] != "extra" && args[0] != "-nope" && !strings.Contains(errw.String(), `"stdout"`) {
			t.Errorf("%v: %q does not name the values accepted", args, errw.String())
		}
	}
}
