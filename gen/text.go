package gen

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dave/jennifer/jen"
	"github.com/storagegen/storagegen/internal/runes"
)

// Schema text (docs, the prefix, key patterns) reaches Go comments, Go
// string literals and the Markdown catalogue. It is text there, never code
// or markup: the checker refuses the runes that could hide or reorder what
// a reviewer reads, and the emitters write what is left so that it cannot
// close or open anything. Go string literals (names, the prefix, key
// patterns) are written by jen.Lit, which quotes with strconv, so they
// cannot end early. The JSON Schema (JSONSchema) contains no schema text at
// all: it describes every schema, not one.

// hiddenRune says why r may not appear in schema text, or "" when it may:
// the runes that hide or reorder what a reviewer reads (runes.Hidden).
func hiddenRune(r rune) string { return runes.Hidden(r) }

// OneLine returns s fit to stand inside one line of a report: a newline
// as \n, and every rune hiddenRune refuses (and tab) as \xNN or \uNNNN.
// Messages quote schema text (a placeholder's body, an allow_breaking
// reason), and a report line is read by programs too: a raw newline
// followed by "::error" would be a GitHub Actions workflow command of its
// own.
func OneLine(s string) string {
	return runes.Escape(s, func(r rune) bool { return r == '\n' || r == '\t' })
}

// textProblem says what makes doc text unusable, with where it stands in
// the text, or "". Docs may span lines.
func textProblem(s string) string {
	line, col := 1, 0
	for i, r := range s {
		col++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Sprintf("is not valid UTF-8 at line %d, character %d of its text", line, col)
			}
		}
		if why := hiddenRune(r); why != "" {
			return fmt.Sprintf("has %s (%U) at line %d, character %d of its text; text may not contain control characters, line or paragraph separators, a byte order mark or bidirectional controls", why, r, line, col)
		}
		if r == '\n' {
			line, col = line+1, 0
		}
	}
	return ""
}

// keyTextProblem says what makes a prefix or key pattern unusable beyond
// the key grammar, or "": keys are shown in comments and the catalogue, so
// every rune must be visible (unicode.IsPrint: no space other than ASCII's,
// no format character such as a bidirectional control). The grammar
// already refuses ASCII controls and spaces.
func keyTextProblem(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Sprintf("is not valid UTF-8 at offset %d", i)
			}
		case r > unicode.MaxASCII && !unicode.IsPrint(r):
			return fmt.Sprintf("has %U at offset %d, which is not a visible character; keys are shown in comments and the catalogue", r, i)
		}
	}
	return ""
}

// commentLines writes text as // line comments, one per line, with
// trailing blanks removed. A line comment ends only at a newline, which
// text has only between lines, so nothing in it (*/, /*, //go:
// directives) can end the comment or become a directive: each line begins
// with "// ". jen.Comment writes a comment that starts with "//" as it is.
func commentLines(text string) []jen.Code {
	var out []jen.Code
	for line := range strings.SplitSeq(text, "\n") {
		if line = strings.TrimRight(line, " \t"); line == "" {
			out = append(out, jen.Comment("//"))
		} else {
			out = append(out, jen.Comment("// "+line))
		}
	}
	return out
}

// mdText writes text as Markdown that renders as the same text: the
// characters that start markup anywhere (\ ` * _ [ ] < > | & ~ $) are
// backslash-escaped, as CommonMark allows for any ASCII punctuation, and
// so are the ones that do at the start of a line (# - + = and the . or )
// of "1."), after the line's indentation is removed (four spaces would
// start a code block). No HTML, link, table, heading or code span can
// come out of a doc.
func mdText(text string) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		lines[i] = mdLine(strings.TrimSpace(line))
	}
	return strings.Join(lines, "\n")
}

func mdLine(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case strings.IndexByte("\\`*_[]<>|&~$", c) >= 0,
			i == 0 && strings.IndexByte("#-+=", c) >= 0,
			(c == '.' || c == ')') && i > 0 && strings.TrimLeft(line[:i], "0123456789") == "":
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// mdCell writes text for one Markdown table cell: mdText on one line.
func mdCell(text string) string {
	return mdText(strings.Join(strings.Fields(text), " "))
}

// mdCode writes s as one code span that shows s as it is: its fence is
// one backtick longer than the longest run of backticks in s, with a
// space inside when s begins or ends with a backtick. In a table cell, a
// '|' would end the cell even inside a code span, so it is escaped there
// (GitHub's tables read \| in a code span as |).
func mdCode(s string, inTable bool) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	if inTable {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	return fence + s + fence
}
