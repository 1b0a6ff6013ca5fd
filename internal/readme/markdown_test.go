package readme

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A block is a fenced code block of a Markdown file.
type block struct {
	line    int    // 1-based line of the opening fence
	info    string // the word after the fence, such as go or sh
	text    string // the lines between the fences, without the fence's indentation
	section string // the last "## " heading before it
}

// blocks returns the fenced code blocks of md. Fences may be indented, as
// inside a list item; the indentation of the opening fence is taken off
// the block's lines.
func blocks(md string) []block {
	var out []block
	var cur *block
	indent, section := "", ""
	for i, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if strings.HasPrefix(line, "## ") {
				section = line
			}
			if strings.HasPrefix(trimmed, "```") {
				indent = line[:len(line)-len(trimmed)]
				cur = &block{line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), section: section}
			}
			continue
		}
		if trimmed == "```" && len(line)-len(trimmed) <= len(indent) {
			out = append(out, *cur)
			cur = nil
			continue
		}
		cur.text += strings.TrimPrefix(line, indent) + "\n"
	}
	return out
}

// readme returns the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBlocks(t *testing.T) {
	md := "# T\n\n## One\n\n```go\nx := 1\n```\n\n- item\n\n  ```sh\n  go build\n    indented\n  ```\n\n## Two\n```\nplain\n```\n"
	got := blocks(md)
	want := []block{
		{line: 5, info: "go", text: "x := 1\n", section: "## One"},
		{line: 11, info: "sh", text: "go build\n  indented\n", section: "## One"},
		{line: 17, info: "", text: "plain\n", section: "## Two"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("block %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
