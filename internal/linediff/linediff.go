// Package linediff writes unified diffs of text, line by line, for
// storagegen -check: a reviewer sees what differs between a generated file
// on disk and what the schema makes of it, not only that it differs.
//
// Lines are matched by patience diff: lines that occur exactly once on
// each side anchor the match (the longest run of them in the same order on
// both sides), and the text between two anchors is diffed the same way,
// after its common first and last lines are taken off. Where no line is
// unique the region is shown as removed and added whole. The result is
// not always the shortest edit script, but it never pairs up unrelated
// lines such as lone braces, its hunks read like a person's edit, and the
// time is O(n log n) in the number of lines, so a large file costs no
// more than sorting it.
package linediff

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/storagegen/storagegen/internal/runes"
)

// Context is the number of unchanged lines shown around each change.
const Context = 3

// Unified returns the unified diff that turns old into new, headed by
// "--- oldName" and "+++ newName", or nil when they are equal. At most
// maxLines lines of hunks are written (0: no limit): hunks from the top,
// the last of them cut short if need be, then a line saying how many lines
// were left out. Two texts that differ only in line endings (a CRLF
// checkout of LF files) get one line that says so instead of a diff whose
// lines all look alike, and text that is not UTF-8 or has control bytes is
// not written raw (see Visible), so a diff never sends escape sequences to
// a terminal or a CI log.
func Unified(oldName, newName string, old, new []byte, maxLines int) []byte {
	if bytes.Equal(old, new) {
		return nil
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
	if bytes.Equal(bytes.ReplaceAll(old, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(new, []byte("\r\n"), []byte("\n"))) {
		out.WriteString("only the line endings differ (CRLF against LF); check git's core.autocrlf or .gitattributes\n")
		return out.Bytes()
	}
	x, y := splitLines(old), splitLines(new)
	ops := diff(x, y)

	written, omitted := 0, 0
	for _, h := range hunks(ops) {
		body := h.lines(x, y)
		if omitted > 0 || maxLines > 0 && written+1 >= maxLines {
			omitted += len(body)
			continue
		}
		out.WriteString(h.header())
		written++
		for _, l := range body {
			if maxLines > 0 && written >= maxLines {
				omitted++
				continue
			}
			out.WriteString(Visible(l))
			written++
		}
	}
	if omitted > 0 {
		fmt.Fprintf(&out, "… %d more diff lines not shown\n", omitted)
	}
	return out.Bytes()
}

// Visible returns line with what a terminal would act on written out
// instead (runes.Escape): controls other than tab, line separators, bidi
// controls and the byte order mark, and each byte that is not part of
// valid UTF-8; a carriage return too, so a CRLF line shows as such. Its
// final newline stays.
func Visible(line string) string {
	body, nl := strings.CutSuffix(line, "\n")
	if nl {
		return runes.Escape(body, nil) + "\n"
	}
	return runes.Escape(body, nil)
}

// splitLines splits b after each "\n"; a last line without one is kept
// as it is.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// An op is one line of the edit script: kept (x[i] == y[j]), removed
// (x[i]) or added (y[j]).
type op struct {
	kind byte // ' ', '-' or '+'
	i, j int  // the line's index in x (for ' ' and '-') and y (for ' ' and '+')
}

// diff returns the edit script from x to y.
func diff(x, y []string) []op {
	var ops []op
	var rec func(x0, x1, y0, y1 int)
	keep := func(i, j int) { ops = append(ops, op{' ', i, j}) }
	rec = func(x0, x1, y0, y1 int) {
		// Common first lines, then common last lines.
		for x0 < x1 && y0 < y1 && x[x0] == y[y0] {
			keep(x0, y0)
			x0, y0 = x0+1, y0+1
		}
		var tail []op
		for x0 < x1 && y0 < y1 && x[x1-1] == y[y1-1] {
			x1, y1 = x1-1, y1-1
			tail = append(tail, op{' ', x1, y1})
		}
		anchors := uniqueAnchors(x[x0:x1], y[y0:y1])
		if len(anchors) == 0 {
			for i := x0; i < x1; i++ {
				ops = append(ops, op{'-', i, y0})
			}
			for j := y0; j < y1; j++ {
				ops = append(ops, op{'+', x1, j})
			}
		} else {
			px, py := x0, y0
			for _, a := range anchors {
				ax, ay := x0+a[0], y0+a[1]
				rec(px, ax, py, ay)
				keep(ax, ay)
				px, py = ax+1, ay+1
			}
			rec(px, x1, py, y1)
		}
		for _, t := range slices.Backward(tail) {
			ops = append(ops, t)
		}
	}
	rec(0, len(x), 0, len(y))
	return ops
}

// uniqueAnchors returns the pairs (i, j) with x[i] == y[j] where that line
// occurs once in x and once in y, keeping the longest subsequence of them
// that increases in both i and j (patience sorting).
func uniqueAnchors(x, y []string) [][2]int {
	type count struct{ nx, ny, i, j int }
	counts := map[string]*count{}
	for i, l := range x {
		c := counts[l]
		if c == nil {
			c = &count{}
			counts[l] = c
		}
		c.nx++
		c.i = i
	}
	for j, l := range y {
		if c := counts[l]; c != nil {
			c.ny++
			c.j = j
		}
	}
	var pairs [][2]int // in order of i
	for i, l := range x {
		if c := counts[l]; c.nx == 1 && c.ny == 1 {
			pairs = append(pairs, [2]int{i, c.j})
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	// Longest increasing subsequence of the j's: tops[k] is the index in
	// pairs of the smallest last element of an increasing run of length
	// k+1; prev links each pair to the one before it in its run.
	var tops []int
	prev := make([]int, len(pairs))
	for p, pair := range pairs {
		k, _ := slices.BinarySearchFunc(tops, pair[1], func(t, j int) int { return pairs[t][1] - j })
		if k > 0 {
			prev[p] = tops[k-1]
		} else {
			prev[p] = -1
		}
		if k == len(tops) {
			tops = append(tops, p)
		} else {
			tops[k] = p
		}
	}
	lis := make([][2]int, len(tops))
	for k, p := len(tops)-1, tops[len(tops)-1]; k >= 0; k, p = k-1, prev[p] {
		lis[k] = pairs[p]
	}
	return lis
}

// A hunk is a run of ops: changes with up to Context kept lines around
// them.
type hunk struct{ ops []op }

// hunks groups ops into hunks, merging changes that are at most
// 2*Context kept lines apart.
func hunks(ops []op) []hunk {
	var out []hunk
	n := len(ops)
	for k := 0; k < n; {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(0, k-Context)
		// Extend to the last change that is close enough to the previous one.
		end := k
		for end < n {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < n && ops[run].kind == ' ' {
				run++
			}
			if run == n || run-end > 2*Context {
				break
			}
			end = run
		}
		stop := min(n, end+Context)
		out = append(out, hunk{ops[start:stop]})
		k = stop
	}
	return out
}

// header is the "@@ -l,s +l,s @@" line of h.
func (h hunk) header() string {
	var nx, ny int
	for _, o := range h.ops {
		if o.kind != '+' {
			nx++
		}
		if o.kind != '-' {
			ny++
		}
	}
	first := h.ops[0]
	// Lines are numbered from 1; an empty range starts at the line before it.
	lx, ly := first.i+1, first.j+1
	if nx == 0 {
		lx--
	}
	if ny == 0 {
		ly--
	}
	return fmt.Sprintf("@@ -%s +%s @@\n", hunkRange(lx, nx), hunkRange(ly, ny))
}

func hunkRange(line, n int) string {
	if n == 1 {
		return fmt.Sprint(line)
	}
	return fmt.Sprintf("%d,%d", line, n)
}

// lines returns the body of h, each line with its newline, and a note
// after a last line that has none.
func (h hunk) lines(x, y []string) []string {
	var out []string
	for _, o := range h.ops {
		l := ""
		switch o.kind {
		case ' ', '-':
			l = x[o.i]
		case '+':
			l = y[o.j]
		}
		if strings.HasSuffix(l, "\n") {
			out = append(out, string(o.kind)+l)
		} else {
			out = append(out, string(o.kind)+l+"\n", "\\ No newline at end of file\n")
		}
	}
	return out
}
