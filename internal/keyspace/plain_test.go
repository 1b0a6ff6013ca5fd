package keyspace

import (
	"errors"
	"strings"
	"testing"
)

func TestExpandPlain(t *testing.T) {
	long := strings.Repeat("x", 1<<16)
	for _, tc := range []struct {
		pattern string
		args    []any
		want    string
	}{
		{"queue_{source_id}_{target_id}", []any{"node_5", "node_8"}, "queue_node_5_node_8"},
		{"queue_{source_id}_{target_id}", []any{"a_b", "c"}, "queue_a_b_c"},
		{"queue_{source_id}_{target_id}", []any{"a", "b_c"}, "queue_a_b_c"},
		{"{node_id}_output", []any{"node_1"}, "node_1_output"},
		{"attempt:{run}:{n:int}", []any{"r", -12}, "attempt:r:-12"},
		{"attempt:{run}:{n:int}", []any{"r", 0}, "attempt:r:0"},
		{"jobs", nil, "jobs"},
		// Everything but control bytes goes in as it is: '%', braces (a
		// hash tag then), glob characters, spaces, invalid UTF-8.
		{"k:{a}", []any{"%5F"}, "k:%5F"},
		{"k:{a}", []any{"{tag}"}, "k:{tag}"},
		{"k:{a}", []any{"*?[]\\ "}, "k:*?[]\\ "},
		{"k:{a}", []any{"\xff\xfe"}, "k:\xff\xfe"},
		{"k:{a}", []any{"é"}, "k:é"},
		{"k:{a}", []any{long}, "k:" + long},
	} {
		got, err := MustParsePattern(tc.pattern).ExpandPlain(tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("%q.ExpandPlain(%q) = %q, %v; want %q", tc.pattern, tc.args, shortText(got), err, shortText(tc.want))
		}
		if got, err := MustParsePattern(tc.pattern).ExpandLayout(Plain, tc.args...); err != nil || got != tc.want {
			t.Errorf("ExpandLayout(Plain) = %q, %v", shortText(got), err)
		}
	}
	p := MustParsePattern("k:{a}:{n:int}")
	for _, args := range [][]any{
		{"", 1}, {"a\x00", 1}, {"\n", 1}, {"a\x1fb", 1}, {"\x7f", 1}, {"a\rb", 1}, // values
		{1, 1}, {"a", "1"}, {"a"}, {"a", 1, 2}, {"a", int64(1)}, // types and counts
	} {
		if got, err := p.ExpandPlain(args...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ExpandPlain(%q) = %q, %v; want ErrInvalidArgument", args, got, err)
		}
	}
	if _, err := p.ExpandLayout(Layout(2), "a", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ExpandLayout(Layout(2)) = %v; want ErrInvalidArgument", err)
	}
}

func TestLayoutNames(t *testing.T) {
	for _, l := range []Layout{Tagged, Plain} {
		if back, ok := ParseLayout(l.String()); !ok || back != l {
			t.Errorf("ParseLayout(%q) = %v, %v", l, back, ok)
		}
	}
	for _, s := range []string{"", "Plain", "escaped", "tagged "} {
		if _, ok := ParseLayout(s); ok {
			t.Errorf("ParseLayout(%q) accepted it", s)
		}
	}
	if got := PlainQueueKey("flow:", "queue_node_5_node_8"); got != "flow:queue:queue_node_5_node_8" {
		t.Errorf("PlainQueueKey = %q", got)
	}
	if got := DeadKey(QueueKeyOf(Plain, "flow:", "q")); got != "flow:queue:q:dead" {
		t.Errorf("plain dead key = %q", got)
	}
	if got := QueueKeyOf(Tagged, "flow:", "q"); got != "flow:queue:{q}" {
		t.Errorf("tagged QueueKeyOf = %q", got)
	}
}

func shortText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
