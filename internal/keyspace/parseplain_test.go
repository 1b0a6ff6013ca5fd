package keyspace

import (
	"errors"
	"reflect"
	"testing"
)

func TestParsePlain(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		args          []any
		ambiguous     bool
		fails         bool
	}{
		{"queue_{a}_{b}", "queue_node_5_node_8", []any{"node", "5_node_8"}, true, false},
		{"queue_{a}_{b}", "queue_x_y", []any{"x", "y"}, false, false},
		{"edge:{a}:{b}", "edge:{x}*:[y]?", []any{"{x}*", "[y]?"}, false, false},
		{"run:{id}:{n:int}", "run:a:b:12", []any{"a:b", 12}, false, false},
		{"run:{id}:{n:int}", "run:a:012", nil, false, true},
		{"run:{id}:{n:int}", "run:a:-3", []any{"a", -3}, false, false},
		{"{node}_output", "x_y_output", []any{"x_y"}, false, false},
		{"{node}_output", "_output", nil, false, true},
		{"k:{a}", "k:a\x01b", nil, false, true},
		{"k:{a}", "j:a", nil, false, true},
		{"fixed", "fixed", []any{}, false, false},
		{"fixed", "fixedx", nil, false, true},
	} {
		p := MustParsePattern(c.pattern)
		args, amb, err := p.ParsePlain(c.name)
		if c.fails {
			if err == nil || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s %q: got %v, %v; want an ErrInvalidArgument", c.pattern, c.name, args, err)
			}
			continue
		}
		if err != nil || amb != c.ambiguous || !reflect.DeepEqual(args, c.args) {
			t.Errorf("%s %q: got %#v ambiguous=%v %v; want %#v ambiguous=%v", c.pattern, c.name, args, amb, err, c.args, c.ambiguous)
			continue
		}
		back, err := p.ExpandPlain(args...)
		if err != nil || back != c.name {
			t.Errorf("%s: %#v expands to %q, %v; want %q", c.pattern, args, back, err, c.name)
		}
	}
}

// TestParsePlainRoundTrip expands random values with separators in them
// and checks that every key parses back to values that expand to it, and
// that a split it calls unique is the one expanded.
func TestParsePlainRoundTrip(t *testing.T) {
	p := MustParsePattern("q_{a}_{b}:{c:int}")
	vals := []string{"x", "x_y", "_", "a:1", "*", "{t}", "%2A", "é"}
	for _, a := range vals {
		for _, b := range vals {
			for _, c := range []int{0, 7, -12} {
				key, err := p.ExpandPlain(a, b, c)
				if err != nil {
					t.Fatal(err)
				}
				args, amb, err := p.ParsePlain(key)
				if err != nil {
					t.Fatalf("%q: %v", key, err)
				}
				back, _ := p.ExpandPlain(args...)
				if back != key {
					t.Fatalf("%q parsed to %#v, which expands to %q", key, args, back)
				}
				if !amb && !reflect.DeepEqual(args, []any{a, b, c}) {
					t.Fatalf("%q: unique split %#v, expanded from %q %q %d", key, args, a, b, c)
				}
			}
		}
	}
}

func TestGlob(t *testing.T) {
	p := MustParsePattern("queue_{a}_{b}:{n:int}")
	for _, c := range []struct {
		l     Layout
		fixed map[string]any
		want  string
	}{
		{Tagged, nil, "queue_*_*:*"},
		{Tagged, map[string]any{"a": "x_y*", "n": 3}, "queue_x%5Fy%2A_*:3"},
		{Plain, map[string]any{"b": "x_y*[1]"}, `queue_*_x_y\*\[1\]:*`},
	} {
		got, err := p.Glob(c.l, c.fixed)
		if err != nil || got != c.want {
			t.Errorf("%v %v: got %q, %v; want %q", c.l, c.fixed, got, err, c.want)
		}
	}
	for _, fixed := range []map[string]any{{"z": "x"}, {"a": ""}, {"a": 1}, {"n": "1"}} {
		if _, err := p.Glob(Tagged, fixed); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v: got %v, want ErrInvalidArgument", fixed, err)
		}
	}
}
