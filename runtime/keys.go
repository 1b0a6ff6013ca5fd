package runtime

import (
	"fmt"
	"strconv"
	"strings"
)

// Every Redis key this package touches is built in this file.
//
//	<prefix>queue:{<name>}        LIST  an at-most-once queue (LPUSH, right pop)
//	<prefix>queue:{<name>}:dead   LIST  items of that queue that could not be decoded
//	<prefix>cache:<name>          STRING a cached value (SET … PX)
//
// An at-least-once queue (ReliableQueue) keeps item IDs in its lists and the
// items themselves in hashes beside them:
//
//	<prefix>queue:{<name>}             LIST  IDs ready to be received
//	<prefix>queue:{<name>}:processing  LIST  IDs received and not yet acked or nacked
//	<prefix>queue:{<name>}:leases      ZSET  ID → lease end, ms of server time
//	<prefix>queue:{<name>}:delayed     ZSET  ID → when a nacked item is ready again
//	<prefix>queue:{<name>}:dead        ZSET  ID → when it became a dead letter
//	<prefix>queue:{<name>}:items       HASH  ID → payload
//	<prefix>queue:{<name>}:attempts    HASH  ID → deliveries so far
//	<prefix>queue:{<name>}:errors      HASH  ID → last error
//	<prefix>queue:{<name>}:id:<ID>     STRING pushed-ID marker, for the dedupe window
//
// The braces around a queue's name are a Redis Cluster hash tag: every key of
// one queue hashes to the same slot. Names never contain raw braces (see
// KeyPattern), so the tag is always exactly the name. An ID in a marker key
// is escaped like a key pattern value, so it cannot bring braces either.

// QueueKey returns the key of the queue called name under prefix.
func QueueKey(prefix, name string) string { return prefix + "queue:{" + name + "}" }

// DeadKey returns the key of the dead-letter list beside the queue key.
func DeadKey(queueKey string) string { return queueKey + ":dead" }

// The keys of an at-least-once queue, in the order every script of
// reliable.go receives them as KEYS.
const (
	keyReady = iota
	keyProcessing
	keyLeases
	keyDelayed
	keyDead
	keyItems
	keyAttempts
	keyErrors
	numReliableKeys
)

// reliableKeys returns the keys of the at-least-once queue at queueKey,
// indexed by the key* constants.
func reliableKeys(queueKey string) []string {
	return []string{queueKey, queueKey + ":processing", queueKey + ":leases", queueKey + ":delayed",
		DeadKey(queueKey), queueKey + ":items", queueKey + ":attempts", queueKey + ":errors"}
}

// markerKey returns the key that records that id was pushed to the
// at-least-once queue at queueKey.
func markerKey(queueKey, id string) string {
	var b strings.Builder
	b.Grow(len(queueKey) + 4 + len(id))
	b.WriteString(queueKey)
	b.WriteString(":id:")
	for i := 0; i < len(id); i++ {
		if c := id[i]; alwaysEscaped(c) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// CacheKey returns the key of the cache entry called name under prefix.
func CacheKey(prefix, name string) string { return prefix + "cache:" + name }

// checkName reports whether a name given to the untyped QueueStore or
// CacheStore is usable as a key part: not empty, and without the bytes that
// would break a hash tag or a glob pattern. '%' is allowed, so that escaped
// names that KeyPattern expands can be addressed too.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '%' && alwaysEscaped(name[i]) {
			return fmt.Errorf("%w: name has byte %q at offset %d; names may not contain { } * ? [ ] \\ or control bytes", ErrInvalidArgument, name[i], i)
		}
	}
	return nil
}

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

// KeyPattern is a parsed key pattern such as "queue_{source_id}_{target_id}".
//
// Expand escapes every string value so that two different argument tuples
// never give the same key and every key parses back into its arguments:
// '%', the bytes { } * ? [ ] \, control bytes, and each byte of the pattern's
// literal text that is not a letter, digit, '-' or '.' are written as %XX
// (upper-case hex). Letters, digits, '-' and '.' are never escaped. Because
// ParseKeyPattern requires an escaped byte in the literal between any two
// placeholders, the first such byte after a value marks the value's end.
type KeyPattern struct {
	pattern      string
	literals     []string // len(literals) == len(placeholders)+1
	placeholders []Placeholder
	escape       [256]bool
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

// alwaysEscaped reports the bytes that never appear raw in a value.
func alwaysEscaped(b byte) bool {
	switch b {
	case '%', '{', '}', '*', '?', '[', ']', '\\':
		return true
	}
	return b < 0x20 || b == 0x7f
}

// verbatim reports the bytes that are never escaped.
func verbatim(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.'
}

// ParseKeyPattern parses a key pattern. It returns every problem it finds,
// joined, each a *PatternError.
func ParseKeyPattern(pattern string) (*KeyPattern, error) {
	p := &KeyPattern{pattern: pattern}
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
				} else if !strings.ContainsFunc(sep, func(r rune) bool { return r > 0x7f || !verbatim(byte(r)) }) {
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
		case alwaysEscaped(c) || c == ' ':
			fail(i, "has %q at offset %d; literal text may not contain spaces, %% * ? [ ] \\ or control bytes", c, i)
			i++
		default:
			lit.WriteByte(c)
			i++
		}
	}
	p.literals = append(p.literals, lit.String())
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	for b := 0; b < 256; b++ {
		p.escape[b] = alwaysEscaped(byte(b))
	}
	for _, l := range p.literals {
		for i := 0; i < len(l); i++ {
			if !verbatim(l[i]) {
				p.escape[l[i]] = true
			}
		}
	}
	return p, nil
}

// MustKeyPattern is ParseKeyPattern for patterns known to be valid, such as
// those in generated code; it panics on an invalid pattern.
func MustKeyPattern(pattern string) *KeyPattern {
	p, err := ParseKeyPattern(pattern)
	if err != nil {
		panic("runtime: " + err.Error())
	}
	return p
}

// String returns the pattern as written.
func (p *KeyPattern) String() string { return p.pattern }

// Placeholders returns the pattern's placeholders in order.
func (p *KeyPattern) Placeholders() []Placeholder {
	return append([]Placeholder(nil), p.placeholders...)
}

// Expand fills in the placeholders with args: a string for each string
// placeholder and an int for each int placeholder, in order. An empty string
// is an error.
func (p *KeyPattern) Expand(args ...any) (string, error) {
	if len(args) != len(p.placeholders) {
		return "", fmt.Errorf("%w: key pattern %q takes %d arguments, got %d", ErrInvalidArgument, p.pattern, len(p.placeholders), len(args))
	}
	var b strings.Builder
	for i, ph := range p.placeholders {
		b.WriteString(p.literals[i])
		switch v := args[i].(type) {
		case string:
			if ph.Type != String {
				return "", fmt.Errorf("%w: placeholder {%s} takes an int, got a string", ErrInvalidArgument, ph.Name)
			}
			if v == "" {
				return "", fmt.Errorf("%w: placeholder {%s} is empty", ErrInvalidArgument, ph.Name)
			}
			p.escapeTo(&b, v)
		case int:
			if ph.Type != Int {
				return "", fmt.Errorf("%w: placeholder {%s} takes a string, got an int", ErrInvalidArgument, ph.Name)
			}
			b.WriteString(strconv.Itoa(v))
		default:
			return "", fmt.Errorf("%w: placeholder {%s} takes a %s, got %T", ErrInvalidArgument, ph.Name, ph.Type, v)
		}
	}
	b.WriteString(p.literals[len(p.literals)-1])
	return b.String(), nil
}

const hexDigits = "0123456789ABCDEF"

func (p *KeyPattern) escapeTo(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if p.escape[c] {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
}

// Parse is the inverse of Expand: it returns the arguments (string or int)
// that expand to name, or an error if no arguments do.
func (p *KeyPattern) Parse(name string) ([]any, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q does not match key pattern %q: %s", ErrInvalidArgument, name, p.pattern, why)
	}
	rest, ok := strings.CutPrefix(name, p.literals[0])
	if !ok {
		return nil, bad("literal prefix differs")
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

func (p *KeyPattern) unescape(ph Placeholder, raw string) (any, error) {
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
