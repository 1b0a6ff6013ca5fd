package gen

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	src := `version: 1
prefix: "flow:"
types:
  T:
    doc: A type.
    fields:
      short: string
      long: {type: int, optional: true, doc: A field.}
queues:
  q:
    key: "q:{id}"
    payload: T
caches:
  c: &c
    payload: T
    ttl: 1h
    allow_breaking: "moved to c2"
    lint_ignore: [missing-doc, long-ttl]
  d: *c
lint_ignore: [empty-prefix]
`
	f, err := Parse("schema.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	str := func(v string, line, col int) Scalar {
		return Scalar{Value: v, Tag: "!!str", Pos: Pos{line, col}, Set: true}
	}
	review := RawReview{AllowBreaking: str("moved to c2", 17, 21), LintIgnore: []Scalar{str("missing-doc", 18, 19), str("long-ttl", 18, 32)}}
	want := &RawSchema{
		Name:    "schema.yaml",
		Version: Scalar{Value: "1", Tag: "!!int", Pos: Pos{1, 10}, Set: true},
		Prefix:  str("flow:", 2, 9),
		Types: []*RawType{{
			Name: str("T", 4, 3), Doc: str("A type.", 5, 10),
			Fields: []*RawField{
				{Name: str("short", 7, 7), Type: str("string", 7, 14)},
				{Name: str("long", 8, 7), Type: str("int", 8, 20), Optional: Scalar{Value: "true", Tag: "!!bool", Pos: Pos{8, 35}, Set: true}, Doc: str("A field.", 8, 46)},
			},
			fields: Scalar{Pos: Pos{6, 5}, Set: true},
		}},
		Queues: []*RawQueue{{Name: str("q", 10, 3), Key: str("q:{id}", 11, 10), Payload: str("T", 12, 14)}},
		Caches: []*RawCache{
			{Name: str("c", 14, 3), Payload: str("T", 15, 14), TTL: str("1h", 16, 10), Review: review},
			// An alias reads as its anchor, positions included.
			{Name: str("d", 19, 3), Payload: str("T", 15, 14), TTL: str("1h", 16, 10), Review: review},
		},
		Review:   RawReview{LintIgnore: []Scalar{str("empty-prefix", 20, 15)}},
		TypesPos: Pos{3, 1}, QueuesPos: Pos{9, 1}, CachesPos: Pos{13, 1},
	}
	if diff := cmp.Diff(want, f, cmp.AllowUnexported(RawType{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// A line indented one level too deep is reported at its own line, not at
// the line where the mapping it breaks starts, which is what the YAML
// library says: here, every line of the repository's schema that sets a
// cache's ttl, indented two more spaces.
func TestMisindentedLine(t *testing.T) {
	src, err := os.ReadFile("../schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(src), "\n")
	tried := 0
	for i, line := range lines {
		if !strings.HasPrefix(line, "    ttl: ") {
			continue
		}
		tried++
		bad := slices.Clone(lines)
		bad[i] = "  " + line
		_, err := Parse("schema.yaml", []byte(strings.Join(bad, "")))
		if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("schema.yaml:%d:", i+1)) {
			t.Errorf("ttl on line %d indented too deep: got %v", i+1, err)
		}
	}
	if tried == 0 {
		t.Fatal("the repository's schema sets no ttl")
	}
}
