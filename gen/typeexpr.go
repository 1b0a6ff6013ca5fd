package gen

import (
	"fmt"
	"go/token"
	"regexp"
	"strings"
)

var builtinTypes = map[string]bool{
	"bool": true, "string": true, "int": true, "int32": true, "int64": true,
	"uint32": true, "uint64": true, "float32": true, "float64": true, "any": true,
}

const allowedTypes = "bool, string, int, int32, int64, uint32, uint64, float32, float64, []byte, time.Time, any, []T, map[string]T, a type under types, or import/path.Type"

// parseTypeExpr parses a field or payload type. Declared types are not yet
// resolved: a Declared TypeRef names an UpperCamel identifier. On failure
// it returns a message.
func parseTypeExpr(s string) (*TypeRef, string) { return parseTypeDepth(s, 0) }

func parseTypeDepth(s string, depth int) (*TypeRef, string) {
	if depth > MaxTypeDepth {
		return nil, fmt.Sprintf("nests slices and maps more than %d deep, the limit", MaxTypeDepth)
	}
	switch {
	case s == "":
		return nil, "is empty; want " + allowedTypes
	case s == "[]byte":
		return &TypeRef{Kind: Bytes}, ""
	case s == "time.Time":
		return &TypeRef{Kind: Time}, ""
	case builtinTypes[s]:
		return &TypeRef{Kind: Builtin, Name: s}, ""
	case strings.HasPrefix(s, "[]"):
		elem, msg := parseTypeDepth(s[2:], depth+1)
		if msg != "" {
			return nil, msg
		}
		return &TypeRef{Kind: Slice, Elem: elem}, ""
	case strings.HasPrefix(s, "map["):
		rest, ok := strings.CutPrefix(s, "map[string]")
		if !ok {
			return nil, "is a map whose key is not string; JSON object keys are strings, use map[string]T"
		}
		elem, msg := parseTypeDepth(rest, depth+1)
		if msg != "" {
			return nil, msg
		}
		return &TypeRef{Kind: Map, Elem: elem}, ""
	case strings.Contains(s, "/"):
		return parseExternal(s)
	case isCamel(s):
		return &TypeRef{Kind: Declared, Name: s}, ""
	}
	return nil, "is not a known type; want " + allowedTypes
}

// parseExternal parses import/path.Type.
func parseExternal(s string) (*TypeRef, string) {
	slash := strings.LastIndex(s, "/")
	dot := strings.LastIndex(s, ".")
	if dot < slash {
		return nil, "names a package but no type; write import/path.Type"
	}
	path, name := s[:dot], s[dot+1:]
	if !token.IsIdentifier(name) || !token.IsExported(name) {
		return nil, "names type " + name + ", which is not an exported Go identifier"
	}
	if path == runtimePath || strings.HasPrefix(path, runtimePath+"/") {
		return nil, "is a type of the storagegen runtime, which generated code already uses; payloads and fields are your own types"
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg[0] == '.' || seg[len(seg)-1] == '.' || strings.ContainsFunc(seg, func(r rune) bool {
			return !(r == '-' || r == '.' || r == '_' || r == '~' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) {
			return nil, "has an invalid import path " + path
		}
	}
	return &TypeRef{Kind: External, Path: path, Name: name}, ""
}

// packageName is the name an import path's package most likely has: its
// last element, or the one before a major version element (/v2), in
// lower-case letters and digits with no leading digits, or pkg. Check
// makes it unique (importNames).
func packageName(path string) string {
	elems := strings.Split(path, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && majorVersionRE.MatchString(last) {
		last = elems[len(elems)-2]
	}
	name := strings.TrimLeft(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToLower(last)), "0123456789")
	if name == "" {
		return "pkg"
	}
	return name
}

var majorVersionRE = regexp.MustCompile(`^v[0-9]+$`)
