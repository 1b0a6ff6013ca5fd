package keyspace

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// PlaceholderType is the Go type of a key pattern placeholder.
type PlaceholderType int

// The placeholder types a key pattern accepts.
const (
	String PlaceholderType = iota // {name} or {name:string}
	Int                           // {name:int}
)

func (t PlaceholderType) String() string {
	if t == Int {
		return "int"
	}
	return "string"
}

// Placeholder is one {name} or {name:type} of a key pattern.
type Placeholder struct {
	Name   string
	Type   PlaceholderType
	Offset int // byte offset of the "{" in the pattern
}

// Pattern is a parsed key pattern such as "queue_{source_id}_{target_id}".
//
// Expand escapes every string value so that two different argument tuples
// never give the same key and every key parses back into its arguments:
// '%', the bytes { } * ? [ ] \, control bytes, and each byte of the pattern's
// literal text that is not a letter, digit, '-' or '.' are written as %XX
// (upper-case hex). Letters, digits, '-' and '.' are never escaped. Because
// ParsePattern requires an escaped byte in the literal between any two
// placeholders, the first such byte after a value marks the value's end.
type Pattern struct {
	pattern      string
	literals     []string // len(literals) == len(placeholders)+1
	placeholders []Placeholder
	escape       [256]bool

	autoOnce sync.Once  // for Overlap
	auto     *automaton // its expansions, once Overlap needs them

	// For Overlap's cheap test (see separated): the bytes the pattern
	// escapes, the bytes of its literal text that are escaped, and its
	// pieces for each set of cut bytes asked so far. A schema's patterns
	// mostly share their separators, so each pattern is cut a few ways at
	// most, however many patterns it is compared with.
	escSet, litSet byteSet
	cutsMu         sync.Mutex
	cuts           map[byteSet]cutPieces
	lastCut        byteSet   // the key of the last cut asked for
	last           cutPieces // and its pieces

	// The automata of the KeySets of this pattern, by shape (under
	// cutsMu): a schema's declarations are compared pairwise.
	keySets map[keySetShape]*automaton
}

// PatternError is a syntax error in a key pattern, at a byte offset.
type PatternError struct {
	Pattern string
	Offset  int
	Msg     string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("key pattern %q %s", e.Pattern, e.Msg)
}

// AlwaysEscaped reports the bytes that never appear raw in a value: '%'
// and the bytes that would break a hash tag or a glob pattern.
func AlwaysEscaped(b byte) bool {
	switch b {
	case '%', '{', '}', '*', '?', '[', ']', '\\':
		return true
	}
	return b < 0x20 || b == 0x7f
}

// Verbatim reports the bytes that are never escaped: letters, digits, '-'
// and '.'.
func Verbatim(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.'
}

// ParsePattern parses a key pattern. It returns every problem it finds,
// joined, each a *PatternError.
func ParsePattern(pattern string) (*Pattern, error) {
	p := &Pattern{pattern: pattern}
	var errs []error
	fail := func(off int, format string, args ...any) {
		errs = append(errs, &PatternError{Pattern: pattern, Offset: off, Msg: fmt.Sprintf(format, args...)})
	}
	if pattern == "" {
		fail(0, "is empty")
	}
	seen := map[string]bool{}
	var lit strings.Builder
	for i := 0; i < len(pattern); {
		c := pattern[i]
		switch {
		case c == '{':
			end := strings.IndexAny(pattern[i+1:], "{}")
			if end < 0 || pattern[i+1+end] == '{' {
				fail(i, "has unclosed %q at offset %d", "{", i)
				next := len(pattern) // go on after the unclosed brace
				if end >= 0 {
					next = i + 1 + end
				}
				lit.WriteString(pattern[i:next])
				i = next
				continue
			}
			body := pattern[i+1 : i+1+end]
			ph := Placeholder{Offset: i}
			name, typ, hasType := strings.Cut(body, ":")
			ph.Name = name
			switch {
			case body == "":
				fail(i, "has an empty placeholder \"{}\" at offset %d", i)
			case !hasType || typ == "string":
				ph.Type = String
			case typ == "int":
				ph.Type = Int
			default:
				fail(i, "has placeholder {%s} with unknown type %q (want string or int)", body, typ)
			}
			if body != "" && name == "" {
				fail(i, "has placeholder {%s} without a name", body)
			}
			if name != "" && seen[name] {
				fail(i, "uses placeholder {%s} twice", name)
			}
			seen[name] = true
			if len(p.placeholders) > 0 {
				sep := lit.String()
				prev := p.placeholders[len(p.placeholders)-1].Name
				if sep == "" {
					fail(i, "has placeholders {%s} and {%s} with no literal text between them", prev, name)
				} else if !strings.ContainsFunc(sep, func(r rune) bool { return r > 0x7f || !Verbatim(byte(r)) }) {
					fail(i, "separates {%s} and {%s} only by %q; values may contain letters, digits, '-' and '.', so put a separator such as ':' between them", prev, name, sep)
				}
			}
			p.literals = append(p.literals, lit.String())
			lit.Reset()
			p.placeholders = append(p.placeholders, ph)
			i += end + 2
		case c == '}':
			fail(i, "has %q without a matching %q at offset %d", "}", "{", i)
			i++
		case AlwaysEscaped(c) || c == ' ':
			fail(i, "has %q at offset %d; literal text may not contain spaces, %% * ? [ ] \\ or control bytes", c, i)
			i++
		case c == '<' || c == '>':
			// Template writes placeholders as <name>; a literal angle
			// bracket would make that display ambiguous.
			fail(i, "has %q at offset %d; literal text may not contain < or >, which the documentation uses to show placeholders (<name>)", c, i)
			i++
		default:
			lit.WriteByte(c)
			i++
		}
	}
	p.literals = append(p.literals, lit.String())
	if len(errs) > 0 {
		if len(errs) == 1 {
			return nil, errs[0]
		}
		return nil, errors.Join(errs...)
	}
	for b := 0; b < 256; b++ {
		p.escape[b] = AlwaysEscaped(byte(b))
	}
	for _, l := range p.literals {
		for i := 0; i < len(l); i++ {
			if !Verbatim(l[i]) {
				p.escape[l[i]] = true
			}
		}
	}
	for c := range 256 {
		if p.escape[c] {
			p.escSet.add(byte(c))
		}
	}
	for _, l := range p.literals {
		for i := 0; i < len(l); i++ {
			if p.escape[l[i]] {
				p.litSet.add(l[i])
			}
		}
	}
	return p, nil
}

// MustParsePattern is ParsePattern for patterns known to be valid; it
// panics on an invalid pattern.
func MustParsePattern(pattern string) *Pattern {
	p, err := ParsePattern(pattern)
	if err != nil {
		panic("keyspace: " + err.Error())
	}
	return p
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.pattern }

// Placeholders returns the pattern's placeholders in order.
func (p *Pattern) Placeholders() []Placeholder {
	return append([]Placeholder(nil), p.placeholders...)
}

// Template returns the pattern with each placeholder written <name>, or
// <name:int> for an int, for documentation: the braces of a pattern would
// read as a Redis Cluster hash tag inside a queue key, so
// QueueKey("flow:", p.Template()) shows as flow:queue:{queue_<source_id>_<target_id>}.
func (p *Pattern) Template() string {
	var b strings.Builder
	for i, ph := range p.placeholders {
		b.WriteString(p.literals[i])
		b.WriteString("<" + ph.Name)
		if ph.Type == Int {
			b.WriteString(":int")
		}
		b.WriteString(">")
	}
	b.WriteString(p.literals[len(p.literals)-1])
	return b.String()
}

// Expand fills in the placeholders with args: a string for each string
// placeholder and an int for each int placeholder, in order. An empty string
// is an error.
func (p *Pattern) Expand(args ...any) (string, error) { return p.expand(Tagged, args) }

// expand fills in the placeholders with args in layout l: string values
// escaped (Tagged) or as they are (Plain), ints in decimal (strconv.Itoa,
// as Python's str(int) writes them).
func (p *Pattern) expand(l Layout, args []any) (string, error) {
	if len(args) != len(p.placeholders) {
		return "", fmt.Errorf("%w: key pattern %q takes %d arguments, got %d", ErrInvalidArgument, p.pattern, len(p.placeholders), len(args))
	}
	n := len(p.pattern)
	for _, a := range args {
		if s, ok := a.(string); ok {
			n += len(s)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for i, ph := range p.placeholders {
		b.WriteString(p.literals[i])
		if err := p.writeValue(&b, l, ph, args[i]); err != nil {
			return "", err
		}
	}
	b.WriteString(p.literals[len(p.literals)-1])
	return b.String(), nil
}

// writeValue writes v as layout l writes it for placeholder ph: a string
// escaped (Tagged) or as it is (Plain), an int in decimal (strconv.Itoa,
// as Python's str(int) writes it). The value's type must be the
// placeholder's, and a value the layout refuses is an error.
func (p *Pattern) writeValue(b *strings.Builder, l Layout, ph Placeholder, v any) error {
	switch v := v.(type) {
	case string:
		if ph.Type != String {
			return fmt.Errorf("%w: placeholder {%s} takes an int, got a string", ErrInvalidArgument, ph.Name)
		}
		if l == Plain {
			if err := CheckPlainValue(v); err != nil {
				return fmt.Errorf("placeholder {%s}: %w", ph.Name, err)
			}
			b.WriteString(v)
			return nil
		}
		if v == "" {
			return fmt.Errorf("%w: placeholder {%s} is empty", ErrInvalidArgument, ph.Name)
		}
		p.escapeTo(b, v)
	case int:
		if ph.Type != Int {
			return fmt.Errorf("%w: placeholder {%s} takes a string, got an int", ErrInvalidArgument, ph.Name)
		}
		b.WriteString(strconv.Itoa(v))
	default:
		return fmt.Errorf("%w: placeholder {%s} takes a %s, got %T", ErrInvalidArgument, ph.Name, ph.Type, v)
	}
	return nil
}

const hexDigits = "0123456789ABCDEF"

// writeEscaped writes c as %XX.
func writeEscaped(b *strings.Builder, c byte) {
	b.WriteByte('%')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&15])
}

func (p *Pattern) escapeTo(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if p.escape[c] {
			writeEscaped(b, c)
		} else {
			b.WriteByte(c)
		}
	}
}

// Parse is the inverse of Expand: it returns the arguments (string or int)
// that expand to name, or an error if no arguments do.
func (p *Pattern) Parse(name string) ([]any, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q does not match key pattern %q: %s", ErrInvalidArgument, name, p.pattern, why)
	}
	rest, ok := strings.CutPrefix(name, p.literals[0])
	if !ok {
		return nil, bad("literal prefix differs")
	}
	if len(p.placeholders) == 0 && rest != "" {
		return nil, bad("it is longer than the pattern")
	}
	args := make([]any, 0, len(p.placeholders))
	for i, ph := range p.placeholders {
		next := p.literals[i+1]
		var raw string
		if i == len(p.placeholders)-1 {
			var ok bool
			if raw, ok = strings.CutSuffix(rest, next); !ok {
				return nil, bad("literal suffix differs")
			}
			rest = ""
		} else {
			// The separator holds at least one byte that values always
			// escape; its first raw occurrence fixes where the value ends.
			k := strings.IndexFunc(next, func(r rune) bool { return r > 0x7f || p.escape[r] })
			j := strings.IndexByte(rest, next[k])
			if j < k || !strings.HasPrefix(rest[j-k:], next) {
				return nil, bad("separator " + strconv.Quote(next) + " not found")
			}
			raw, rest = rest[:j-k], rest[j-k+len(next):]
		}
		v, err := p.unescape(ph, raw)
		if err != nil {
			return nil, bad(err.Error())
		}
		args = append(args, v)
	}
	return args, nil
}

func (p *Pattern) unescape(ph Placeholder, raw string) (any, error) {
	if raw == "" {
		return nil, fmt.Errorf("{%s} is empty", ph.Name)
	}
	if ph.Type == Int {
		n, err := strconv.Atoi(raw)
		if err != nil || strconv.Itoa(n) != raw {
			return nil, fmt.Errorf("{%s} is not an int", ph.Name)
		}
		return n, nil
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return nil, fmt.Errorf("{%s} has a truncated escape", ph.Name)
			}
			hi, lo := strings.IndexByte(hexDigits, raw[i+1]), strings.IndexByte(hexDigits, raw[i+2])
			if hi < 0 || lo < 0 {
				return nil, fmt.Errorf("{%s} has a bad escape", ph.Name)
			}
			c = byte(hi<<4 | lo)
			if !p.escape[c] {
				return nil, fmt.Errorf("{%s} escapes a byte that is not escaped", ph.Name)
			}
			i += 2
		} else if p.escape[c] {
			return nil, fmt.Errorf("{%s} has raw byte %q that is always escaped", ph.Name, c)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}
