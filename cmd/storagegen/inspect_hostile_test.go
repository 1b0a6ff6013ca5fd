package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestInspectTerminalEscapes: payloads and keys are an attacker's text.
// Valid JSON may hold, unescaped inside its strings, DEL, the C1 controls
// (U+009B is CSI, which 8-bit terminals act on as ESC [ does) and bidi
// overrides (U+202E, which reorders what the operator reads); a key may
// hold ESC itself. None may reach the terminal raw: the tables show them
// escaped, and -json too (\u escapes decode to the same text).
func TestInspectTerminalEscapes(t *testing.T) {
	srv, schema, cl := inspectFixture(t)
	ctx := context.Background()
	const evil = "\u009b2J\u202egnp.exe\x7f\u2028x"
	for _, c := range [][]any{
		{"LPUSH", "ci:queue:e_x", `{"id":"` + evil + `"}`},
		{"LPUSH", "ci:queue:e_" + evil, `{"id":"1"}`},
		{"LPUSH", "ci:queue:{jobs:t1}", "a"},
		{"HSET", "ci:queue:{jobs:t1}:items", "a", `{"id":"` + evil + `"}`},
		{"HSET", "ci:queue:{jobs:t1}:errors", "a", "handler said " + evil},
		{"SET", "ci:cache:out:n1", `{"id":"` + evil + `","` + evil + `":1}`, "PX", "3600000"},
		{"SET", "ci:\x1b[2Jstray" + evil, "1"},
	} {
		if err := cl.Do(ctx, c...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"-schema", schema, "-redis", srv.URL(0)}
	for _, args := range [][]string{
		{"-unknown"},
		{"queue", "edges", "-peek", "5"},
		{"queue", "edges", "a=x", "-peek", "5"},
		{"queue", "jobs", "tenant=t1", "-peek", "5"},
		{"cache", "out", "node=n1", "-get"},
		{"-json", "queue", "edges", "a=x", "-peek", "5"},
		{"-json", "cache", "out", "node=n1", "-get"},
		{"-json", "-unknown"},
	} {
		code, out, errs := inspectRun(t, "", false, append(base, args...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errs)
		}
		if !strings.Contains(out, "2J") {
			t.Fatalf("%q: the hostile text is not shown at all: %s", args, out)
		}
		for _, r := range "\x1b\u009b\u202e\x7f\u2028" {
			if strings.ContainsRune(out+errs, r) {
				t.Errorf("%q: output holds %U raw:\n%s", args, r, out)
			}
		}
	}
	// The escaped JSON is the same value: the payload's text comes back.
	_, out, _ := inspectRun(t, "", false, append(base, "-json", "cache", "out", "node=n1", "-get")...)
	var e struct {
		Item struct{ Value map[string]any }
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatal(err)
	}
	if e.Item.Value["id"] != evil || e.Item.Value[evil] != 1.0 {
		t.Fatalf("-json -get decodes to %q, want the payload's own text", e.Item.Value)
	}
}
