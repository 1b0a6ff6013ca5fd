package keyspace

import (
	"fmt"
	"strings"
)

// GlobEscape returns s with a backslash before each byte that a Redis glob
// pattern (SCAN MATCH, KEYS) reads as special: * ? [ ] \. The glob then
// matches s itself and nothing else.
func GlobEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Glob returns a Redis glob pattern that matches every expansion of p in
// layout l whose placeholders named in fixed have those values (a string
// or an int, as Expand takes them); the other placeholders match anything.
// Literal text and fixed values are escaped for the glob, so a plain value
// holding * or [ matches only itself. Every expansion it describes
// matches it, and so may other text (a '*' spans separators): callers
// parse each match back (Parse, ParsePlain) before they trust it. A fixed
// name that p lacks, or a value Expand would refuse, is an error.
func (p *Pattern) Glob(l Layout, fixed map[string]any) (string, error) {
	if err := CheckLayout(l); err != nil {
		return "", err
	}
	for name := range fixed {
		if !p.has(name) {
			return "", fmt.Errorf("%w: key pattern %q has no placeholder {%s}", ErrInvalidArgument, p.pattern, name)
		}
	}
	var b strings.Builder
	for i, ph := range p.placeholders {
		b.WriteString(GlobEscape(p.literals[i]))
		v, ok := fixed[ph.Name]
		if !ok {
			b.WriteByte('*')
			continue
		}
		s, err := p.value(l, ph, v)
		if err != nil {
			return "", err
		}
		b.WriteString(GlobEscape(s))
	}
	b.WriteString(GlobEscape(p.literals[len(p.literals)-1]))
	return b.String(), nil
}

func (p *Pattern) has(name string) bool {
	for _, ph := range p.placeholders {
		if ph.Name == name {
			return true
		}
	}
	return false
}

// value returns v as layout l writes it for placeholder ph (writeValue).
func (p *Pattern) value(l Layout, ph Placeholder, v any) (string, error) {
	var b strings.Builder
	if err := p.writeValue(&b, l, ph, v); err != nil {
		return "", err
	}
	return b.String(), nil
}
