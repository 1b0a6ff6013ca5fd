// Package runes decides, in one place, which characters hide or reorder
// what a reader sees, and writes text with them made visible. The
// generator refuses them in schema text and escapes them in its reports;
// the command's diffs escape them, so that neither a CI log nor a terminal
// ever acts on them.
package runes

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Hidden says why r hides or reorders what a reader sees, or "" when it
// does not. Controls other than tab and newline, the Unicode line and
// paragraph separators, the byte order mark and the bidirectional
// controls end a line for one reader and not another, act on a terminal,
// or reorder the text a reviewer sees (CVE-2021-42574, "Trojan Source").
func Hidden(r rune) string {
	switch {
	case r == '\t' || r == '\n':
		return ""
	case r < 0x20 || r >= 0x7f && r < 0xa0:
		return "a control character"
	case r == '\u2028' || r == '\u2029':
		return "a Unicode line or paragraph separator"
	case r == '\ufeff':
		return "a byte order mark"
	case r == '\u061c' || r == '\u200e' || r == '\u200f' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069':
		return "a bidirectional control"
	}
	return ""
}

// Escape returns s with every hidden rune, every rune for which also
// holds (nil: none), and every byte that is not part of valid UTF-8
// written out: a newline as \n, other ASCII and stray bytes as \xNN, the
// rest as \uNNNN. A backslash stays as it is, so the result is for people
// to read, not to unquote.
func Escape(s string, also func(rune) bool) string {
	escaped := func(r rune) bool { return Hidden(r) != "" || also != nil && also(r) }
	if utf8.ValidString(s) && !strings.ContainsFunc(s, escaped) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !escaped(r):
			b.WriteString(s[i : i+size])
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}
