package gen

import "testing"

func TestNames(t *testing.T) {
	for _, tc := range []struct{ snake, exported, param string }{
		{"node_edge", "NodeEdge", "nodeEdge"},
		{"run_id", "RunID", "runID"},
		{"source_id", "SourceID", "sourceID"},
		{"id", "ID", "id"},
		{"url", "URL", "url"},
		{"http_url_path", "HTTPURLPath", "httpURLPath"},
		{"ttl", "TTL", "ttl"},
		{"node_5", "Node5", "node5"},
		{"a", "A", "a"},
		{"duration_ms", "DurationMs", "durationMs"},
		{"json_api", "JSONAPI", "jsonAPI"},
	} {
		if got := exportedName(tc.snake); got != tc.exported {
			t.Errorf("exportedName(%q) = %q, want %q", tc.snake, got, tc.exported)
		}
		if got := paramName(tc.snake); got != tc.param {
			t.Errorf("paramName(%q) = %q, want %q", tc.snake, got, tc.param)
		}
	}
}

func TestNameShapes(t *testing.T) {
	for s, want := range map[string]bool{"node_edge": true, "a1_b2": true, "x": true, "Node": false, "a__b": false, "_a": false, "a_": false, "1a": false, "a-b": false, "": false} {
		if got := isSnake(s); got != want {
			t.Errorf("isSnake(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"NodeMessage": true, "A": true, "ID2": true, "nodeMessage": false, "Node_Message": false, "": false} {
		if got := isCamel(s); got != want {
			t.Errorf("isCamel(%q) = %v", s, got)
		}
	}
	for name, want := range map[string]string{"type": "is a Go keyword", "len": "is a predeclared Go identifier", "runtime": "is used by generated code", "nodeID": ""} {
		if got := paramProblem(name); got != want {
			t.Errorf("paramProblem(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParseTypeExpr(t *testing.T) {
	for _, tc := range []struct{ in, want, msg string }{
		{"string", "string", ""},
		{"[]byte", "[]byte", ""},
		{"time.Time", "time.Time", ""},
		{"map[string][]map[string]int64", "map[string][]map[string]int64", ""},
		{"[]NodeOutput", "[]NodeOutput", ""},
		{"example.com/engine/nodes.Output", "example.com/engine/nodes.Output", ""},
		{"map[int]string", "", "is a map whose key is not string; JSON object keys are strings, use map[string]T"},
		{"example.com/engine/nodes", "", "names a package but no type; write import/path.Type"},
		{"example.com/engine/nodes.output", "", "names type output, which is not an exported Go identifier"},
		{"example.com//nodes.Output", "", "has an invalid import path: an empty element (a leading, trailing or double /)"},
		{"time.Duration", "", "is not a known type; want " + allowedTypes},
		{"int8", "", "is not a known type; want " + allowedTypes},
		{"*NodeOutput", "", "is not a known type; want " + allowedTypes},
		{"", "", "is empty; want " + allowedTypes},
	} {
		got, msg := parseTypeExpr(tc.in)
		if msg != tc.msg {
			t.Errorf("parseTypeExpr(%q) message = %q, want %q", tc.in, msg, tc.msg)
		}
		if msg == "" && got.String() != tc.want {
			t.Errorf("parseTypeExpr(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestPackageName(t *testing.T) {
	for path, want := range map[string]string{
		"example.com/engine/nodes": "nodes", "github.com/x/go-redis": "goredis",
		"example.com/x/v2": "x", "example.com/v2": "examplecom", "example.com/123": "pkg", "a/B_c": "bc",
	} {
		if got := packageName(path); got != want {
			t.Errorf("packageName(%q) = %q, want %q", path, got, want)
		}
	}
}
