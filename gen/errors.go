package gen

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in the schema file, 1-based. A zero Pos means unknown.
type Pos struct {
	Line, Col int
}

// Error is one schema problem at a position.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// ErrorList is every problem found in a schema, sorted by position. Its
// Error method prints one per line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errs collects errors for one file.
type errs struct {
	file string
	list ErrorList
}

// add records a problem at pos. The message is made one line (OneLine),
// whatever schema text it quotes, so that each error is exactly one line
// of the report.
func (e *errs) add(pos Pos, format string, args ...any) {
	e.list = append(e.list, &Error{File: e.file, Pos: pos, Msg: OneLine(fmt.Sprintf(format, args...))})
}

// err returns the sorted, de-duplicated list, or nil.
func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	slices.SortStableFunc(e.list, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col), strings.Compare(a.Msg, b.Msg))
	})
	e.list = slices.CompactFunc(e.list, func(a, b *Error) bool { return *a == *b })
	return e.list
}

// sortByPos sorts s by position, stably, so that reports read down the
// file.
func sortByPos[T any](s []T, pos func(T) Pos) {
	slices.SortStableFunc(s, func(a, b T) int {
		pa, pb := pos(a), pos(b)
		return cmp.Or(pa.Line-pb.Line, pa.Col-pb.Col)
	})
}
