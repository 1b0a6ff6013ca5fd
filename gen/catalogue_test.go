package gen

import (
	"strings"
	"testing"
)

// TestCatalogueCodeSpans checks that every line of a catalogue renders as
// meant: its code spans are single backticks that pair up, so no type such
// as map[string]any comes out with stray backticks (two in a row would open
// a code span of another length and swallow the rest of the line).
func TestCatalogueCodeSpans(t *testing.T) {
	src := `version: 1
prefix: "flow:"
types:
  Node:
    doc: A node, with a doc that has ` + "`code`" + ` in it.
    fields:
      data: map[string]any
      tags: "[]string"
      nested: "[]map[string][]int64"
      children: "[]Node"
      by_name: map[string]Node
      deep: "map[string][]Node"
      at: time.Time
      raw: "[]byte"
      ext: example.com/x/nodes.Output
queues:
  edges: {key: "edge:{source_id}:{n:int}", payload: Node, delivery: at-least-once}
caches:
  out: {key: "{node_id}_output", payload: Node, ttl: none, lint_ignore: [id-separator]}
`
	m, err := Load("schema.yaml", []byte(src), CheckOptions{DefaultPackage: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	cat := string(Catalogue(m))
	for _, want := range []string{"`map[string]any`", "`[]`[Node](#type-node)", "`map[string][]`[Node](#type-node)", "`[]map[string][]int64`",
		"| key | `flow:queue:{edge:<source_id>:<n:int>}` |", "| dead letters | `flow:queue:{edge:<source_id>:<n:int>}:dead` |", "| key | `flow:cache:<node_id>_output` |"} {
		if !strings.Contains(cat, want) {
			t.Errorf("catalogue lacks %s", want)
		}
	}
	for _, cat := range []string{cat, string(Catalogue(loadRepoSchema(t)))} {
		for i, line := range strings.Split(cat, "\n") {
			if msg := codeSpanProblem(line); msg != "" {
				t.Errorf("catalogue line %d: %s\n%s", i+1, msg, line)
			}
		}
	}
}

// codeSpanProblem says what is wrong with the code spans of a Markdown
// line, or "": every backtick run must be a single backtick, and they must
// pair up.
func codeSpanProblem(line string) string {
	n := 0
	for i := 0; i < len(line); i++ {
		if line[i] != '`' {
			continue
		}
		if i+1 < len(line) && line[i+1] == '`' {
			return "two backticks in a row"
		}
		n++
	}
	if n%2 != 0 {
		return "an unclosed code span"
	}
	return ""
}
