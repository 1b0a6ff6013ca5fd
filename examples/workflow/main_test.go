package main

import (
	"bytes"
	"context"
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
			if err := run(context.Background(), &out, tc.url); err != nil {
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
