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
		if why := badPathElement(seg); why != "" {
			return nil, "has an invalid import path: " + why
		}
	}
	return &TypeRef{Kind: External, Path: path, Name: name}, ""
}

// badPathElement says why seg cannot be an element of an import path, as
// the go command decides it (golang.org/x/mod/module's CheckImportPath),
// or "". The message quotes seg only when it is plain ASCII, which the
// rules make sure of before.
func badPathElement(seg string) string {
	switch {
	case seg == "":
		return "an empty element (a leading, trailing or double /)"
	case strings.ContainsFunc(seg, func(r rune) bool {
		return !(r == '-' || r == '.' || r == '_' || r == '~' || r == '+' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}):
		return "an element may hold only ASCII letters, digits and - . _ ~ +"
	case seg[0] == '.' || seg[len(seg)-1] == '.':
		return fmt.Sprintf("element %q starts or ends with a dot", seg)
	case seg == "vendor":
		return "a vendor element: vendored packages cannot be imported by path"
	}
	short, _, _ := strings.Cut(seg, ".")
	if i := strings.LastIndexByte(short, '~'); i >= 0 && i < len(short)-1 && strings.Trim(short[i+1:], "0123456789") == "" {
		return fmt.Sprintf("element %q ends in a tilde and digits, which Windows short names use", seg)
	}
	for _, r := range windowsReserved {
		if strings.EqualFold(short, r) {
			return fmt.Sprintf("element %q is a reserved file name on Windows", seg)
		}
	}
	return ""
}

// windowsReserved are names Windows gives to devices, with or without an
// extension, which the go command refuses as path elements.
var windowsReserved = []string{"CON", "PRN", "AUX", "NUL",
	"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
	"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"}

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
