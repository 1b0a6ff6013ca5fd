package runes

import "testing"

func TestEscape(t *testing.T) {
	tabAndNewline := func(r rune) bool { return r == '\n' || r == '\t' }
	for _, tc := range []struct {
		in   string
		also func(rune) bool
		want string
	}{
		{"plain text ünïcode", nil, "plain text ünïcode"},
		{"tab\tkept", nil, "tab\tkept"},
		{"tab\tand\nnewline", tabAndNewline, `tab\x09and\nnewline`},
		{"esc \x1b[31m", nil, `esc \x1b[31m`},
		{"cr\r", nil, `cr\x0d`},
		{"bad \xff byte", nil, `bad \xff byte`},
		{"bidi \u202eevil", nil, `bidi \u202eevil`},
		{"line\u2028sep and \ufeffbom", nil, `line\u2028sep and \ufeffbom`},
		{"nul \x00 del \x7f c1 \u0085", nil, `nul \x00 del \x7f c1 \u0085`},
	} {
		if got := Escape(tc.in, tc.also); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for r, hidden := range map[rune]bool{'a': false, '\t': false, '\n': false, 0: true, '\r': true, 0x9b: true, '\u2029': true, '\u2066': true, '\u200b': false} {
		if got := Hidden(r) != ""; got != hidden {
			t.Errorf("Hidden(%U) = %v, want %v", r, got, hidden)
		}
	}
}
