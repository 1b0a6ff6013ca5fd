package keyspace

import (
	"fmt"
	"strconv"
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

// value returns v as layout l writes it for placeholder ph.
func (p *Pattern) value(l Layout, ph Placeholder, v any) (string, error) {
	switch v := v.(type) {
	case int:
		if ph.Type != Int {
			return "", fmt.Errorf("%w: placeholder {%s} takes a string, got an int", ErrInvalidArgument, ph.Name)
		}
		return strconv.Itoa(v), nil
	case string:
		if ph.Type != String {
			return "", fmt.Errorf("%w: placeholder {%s} takes an int, got a string", ErrInvalidArgument, ph.Name)
		}
		if l == Plain {
			if err := CheckPlainValue(v); err != nil {
				return "", fmt.Errorf("placeholder {%s}: %w", ph.Name, err)
			}
			return v, nil
		}
		if v == "" {
			return "", fmt.Errorf("%w: placeholder {%s} is empty", ErrInvalidArgument, ph.Name)
		}
		var b strings.Builder
		p.escapeTo(&b, v)
		return b.String(), nil
	}
	return "", fmt.Errorf("%w: placeholder {%s} takes a %s, got %T", ErrInvalidArgument, ph.Name, ph.Type, v)
}
