package linediff

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n", `
@@ -1,3 +1,3 @@
 a
-b
+B
 c
`},
		{"added to an empty file", "", "a\nb\n", `
@@ -0,0 +1,2 @@
+a
+b
`},
		{"everything removed", "a\n", "", `
@@ -1 +0,0 @@
-a
`},
		{"context is three lines", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n", `
@@ -2,7 +2,7 @@
 2
 3
 4
-5
+five
 6
 7
 8
`},
		{"changes far apart make two hunks", "a\n1\n2\n3\n4\n5\n6\n7\nb\n", "A\n1\n2\n3\n4\n5\n6\n7\nB\n", `
@@ -1,4 +1,4 @@
-a
+A
 1
 2
 3
@@ -6,4 +6,4 @@
 5
 6
 7
-b
+B
`},
		{"changes six lines apart make one hunk", "a\n1\n2\n3\n4\n5\n6\nb\n", "A\n1\n2\n3\n4\n5\n6\nB\n", `
@@ -1,8 +1,8 @@
-a
+A
 1
 2
 3
 4
 5
 6
-b
+B
`},
		{"inserted lines", "a\nb\n", "a\nx\ny\nb\n", `
@@ -1,2 +1,4 @@
 a
+x
+y
 b
`},
		{"deleted lines in the middle", "a\nx\ny\nb\n", "a\nb\n", `
@@ -1,4 +1,2 @@
 a
-x
-y
 b
`},
		{"braces are not anchors", "func a() {\n}\nfunc b() {\n}\n", "func b() {\n}\n", `
@@ -1,4 +1,2 @@
-func a() {
-}
 func b() {
 }
`},
		{"moved line", "a\nb\nc\n", "b\nc\na\n", `
@@ -1,3 +1,3 @@
-a
 b
 c
+a
`},
		{"no newline at the end", "a\nb", "a\nb\n", `
@@ -1,2 +1,2 @@
 a
-b
\ No newline at end of file
+b
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Unified("old", "new", []byte(tc.old), []byte(tc.new), 0))
			want := ""
			if tc.want != "" {
				want = "--- old\n+++ new\n" + strings.TrimPrefix(tc.want, "\n")
			}
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestBounded: past maxLines, the hunks that fit are written and the rest
// is counted.
func TestBounded(t *testing.T) {
	var old, new strings.Builder
	for i := range 100 {
		fmt.Fprintf(&old, "line %d\n", i)
		if i%10 == 0 {
			fmt.Fprintf(&new, "changed %d\n", i)
		} else {
			fmt.Fprintf(&new, "line %d\n", i)
		}
	}
	got := string(Unified("a", "b", []byte(old.String()), []byte(new.String()), 25))
	if n := strings.Count(got, "\n"); n > 25+3 {
		t.Errorf("%d lines, want at most 25 and the headers:\n%s", n, got)
	}
	if !strings.Contains(got, "@@ -1,4 +1,4 @@\n") || !strings.HasSuffix(got, " more diff lines not shown\n") {
		t.Errorf("want the first hunks and a note:\n%s", got)
	}
	full := string(Unified("a", "b", []byte(old.String()), []byte(new.String()), 0))
	if strings.Count(full, "@@ ") != 10 {
		t.Errorf("unbounded: want 10 hunks:\n%s", full)
	}
}

// TestApply: on random texts of a few distinct lines (so that most are
// repeated), applying the diff to old gives new.
func TestApply(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		var b strings.Builder
		for range r.IntN(30) {
			b.WriteString(strconv.Itoa(r.IntN(6)) + "\n")
		}
		return b.String()
	}
	for range 2000 {
		old, new := text(), text()
		d := string(Unified("old", "new", []byte(old), []byte(new), 0))
		if got, err := apply(old, d); err != nil || got != new {
			t.Fatalf("old %q new %q: applying gives %q (%v); diff:\n%s", old, new, got, err, d)
		}
	}
}

// apply applies a unified diff made by Unified to old.
func apply(old, diff string) (string, error) {
	if diff == "" {
		return old, nil
	}
	x := splitLines([]byte(old))
	var out []string
	next := 0 // index in x of the first line not yet copied
	lines := strings.SplitAfter(diff, "\n")
	for _, l := range lines[2:] {
		switch {
		case l == "":
		case strings.HasPrefix(l, "@@ "):
			start, newStart, err := hunkStarts(l)
			if err != nil {
				return "", err
			}
			if start < next {
				return "", fmt.Errorf("hunk %q overlaps", l)
			}
			out = append(out, x[next:start]...)
			next = start
			if len(out) != newStart {
				return "", fmt.Errorf("hunk %q: the new text is at line %d", l, len(out)+1)
			}
		case l[0] == ' ' || l[0] == '-':
			if next >= len(x) || x[next] != l[1:] {
				return "", fmt.Errorf("line %q does not match old line %d", l, next)
			}
			if l[0] == ' ' {
				out = append(out, l[1:])
			}
			next++
		case l[0] == '+':
			out = append(out, l[1:])
		default:
			return "", fmt.Errorf("bad line %q", l)
		}
	}
	out = append(out, x[next:]...)
	return strings.Join(out, ""), nil
}

// hunkStarts returns the 0-based first lines of a hunk in the old and the
// new text.
func hunkStarts(header string) (old, new int, err error) {
	var r [2]string
	if n, _ := fmt.Sscanf(header, "@@ -%s +%s @@", &r[0], &r[1]); n != 2 {
		return 0, 0, fmt.Errorf("bad hunk header %q", header)
	}
	var starts [2]int
	for k, s := range r {
		first, count, ok := strings.Cut(s, ",")
		line, err := strconv.Atoi(first)
		if err != nil {
			return 0, 0, fmt.Errorf("bad hunk header %q", header)
		}
		if !ok || count != "0" {
			line-- // 1-based, except for an empty range
		}
		starts[k] = line
	}
	return starts[0], starts[1], nil
}

// A CRLF copy of an LF file gets one line that says so, not a diff of
// lines that all look alike.
func TestLineEndingsOnly(t *testing.T) {
	got := string(Unified("a", "b", []byte("x\r\ny\r\n"), []byte("x\ny\n"), 0))
	want := "--- a\n+++ b\nonly the line endings differ (CRLF against LF); check git's core.autocrlf or .gitattributes\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// Control bytes, bidi controls and invalid UTF-8 never reach the output
// raw; a CR that differs shows as \x0d.
func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"plain\n":                 "plain\n",
		"tab\there\n":             "tab\there\n",
		"esc \x1b[31mred\n":       "esc \\x1b[31mred\n",
		"cr\r\n":                  "cr\\x0d\n",
		"bad \xff utf8":           "bad \\xff utf8",
		"bidi \u202eevil\n":       "bidi \\u202eevil\n",
		"nul \x00 and del \x7f\n": "nul \\x00 and del \\x7f\n",
		"ünïcode ok\n":            "ünïcode ok\n",
	} {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%q) = %q, want %q", in, got, want)
		}
	}
	out := string(Unified("a", "b", []byte("x\n\x1b]0;pwned\x07\n"), []byte("x\ny\n"), 0))
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("diff carries raw control bytes: %q", out)
	}
}

// A first hunk longer than the cap is shown up to the cap, not dropped.
func TestCapCutsLongHunk(t *testing.T) {
	var old, new strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&old, "old %d\n", i)
		fmt.Fprintf(&new, "new %d\n", i)
	}
	out := string(Unified("a", "b", []byte(old.String()), []byte(new.String()), 50))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2+50+1 {
		t.Fatalf("got %d lines, want the 2 headers, 50 diff lines and the note:\n%s", len(lines), out)
	}
	if lines[2] != "@@ -1,500 +1,500 @@" || lines[3] != "-old 0" {
		t.Errorf("the cut hunk does not start with its header and first line:\n%s", out)
	}
	if last := lines[len(lines)-1]; last != "… 951 more diff lines not shown" {
		t.Errorf("last line %q", last)
	}
}
