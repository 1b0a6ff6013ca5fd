package gen

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// The Python run reads the checked Model and decides, here and once, every
// Python name it emits: PythonModel is to GeneratePython what Check is to
// Generate. A schema name is a Python name as it is, with a trailing _
// when it is a keyword, a soft keyword or a builtin (class → class_,
// type → type_, list → list_), or a name the generated code gives a
// meaning of its own (to_json, from_json on a payload type; self in an
// accessor). Schema names are lower_snake_case or UpperCamelCase and never
// end in _, so an escaped name never equals another schema name; what can
// still collide is a payload type with a name the package exports itself
// (Store, NanoDatetime, the error classes), which is an error at the
// type's position.

// PyModel is a checked schema with every Python name decided.
// GeneratePython reads it and computes nothing but text.
type PyModel struct {
	Schema  string // the schema file's base name, for the header
	Package string // the Python package name: the base name of the output directory
	Prefix  string
	Types   []*PyType
	Queues  []*PyEntry
	Caches  []*PyEntry
	Errors  []string // the error classes __init__.py re-exports, sorted
}

// PyType is a payload dataclass.
type PyType struct {
	Name   string // schema name
	PyName string // class name
	Doc    string
	Fields []*PyField
}

// PyField is one dataclass field.
type PyField struct {
	Name     string // schema name, also the JSON member name
	PyName   string // attribute name
	Type     *TypeRef
	Optional bool
	Doc      string
}

// PyEntry is a queue or a cache with its accessor.
type PyEntry struct {
	Name    string // schema name
	PyName  string // accessor name
	VarName string // module-level name of its declaration
	Doc     string
	Key     *keyspace.Pattern
	KeyText string // the key as documentation shows it: flow:queue:{queue_<source_id>_<target_id>}
	Layout  string // "tagged" or "plain"
	Params  []*PyParam
	Payload string // PyName of the payload type
	Codec   string // module-level name of the payload's codec

	// Queues only.
	Reliable *ReliableSettings
	Shards   int
	// Caches only.
	TTL      float64 // seconds; when !NoExpiry
	NoExpiry bool
	Summary  string // the first sentence of the accessor's docstring
}

// PyParam is an accessor parameter.
type PyParam struct {
	Name   string // placeholder name
	PyName string
	Int    bool
}

// pyKeywords are Python 3's keywords and soft keywords (3.9 to 3.13).
var pyKeywords = set("False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
	"continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
	"in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
	"_", "case", "match", "type")

// pyBuiltins are the names of Python's builtins module (3.11 to 3.13), which
// a generated name may not shadow: generated annotations use several of
// them, and a reader expects them to mean what they always do.
var pyBuiltins = set("ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BaseExceptionGroup",
	"BlockingIOError", "BrokenPipeError", "BufferError", "BytesWarning", "ChildProcessError",
	"ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
	"DeprecationWarning", "EOFError", "Ellipsis", "EncodingWarning", "EnvironmentError", "Exception",
	"ExceptionGroup", "FileExistsError", "FileNotFoundError", "FloatingPointError", "FutureWarning",
	"GeneratorExit", "IOError", "ImportError", "ImportWarning", "IndentationError", "IndexError",
	"InterruptedError", "IsADirectoryError", "KeyError", "KeyboardInterrupt", "LookupError", "MemoryError",
	"ModuleNotFoundError", "NameError", "NotADirectoryError", "NotImplemented", "NotImplementedError",
	"OSError", "OverflowError", "PendingDeprecationWarning", "PermissionError", "ProcessLookupError",
	"PythonFinalizationError", "RecursionError", "ReferenceError", "ResourceWarning", "RuntimeError",
	"RuntimeWarning", "StopAsyncIteration", "StopIteration", "SyntaxError", "SyntaxWarning", "SystemError",
	"SystemExit", "TabError", "TimeoutError", "TypeError", "UnboundLocalError", "UnicodeDecodeError",
	"UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError", "UnicodeWarning", "UserWarning",
	"ValueError", "Warning", "ZeroDivisionError",
	"abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "breakpoint", "bytearray", "bytes",
	"callable", "chr", "classmethod", "compile", "complex", "copyright", "credits", "delattr", "dict", "dir",
	"divmod", "enumerate", "eval", "exec", "exit", "filter", "float", "format", "frozenset", "getattr",
	"globals", "hasattr", "hash", "help", "hex", "id", "input", "int", "isinstance", "issubclass", "iter",
	"len", "license", "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct", "open",
	"ord", "pow", "print", "property", "quit", "range", "repr", "reversed", "round", "set", "setattr",
	"slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "vars", "zip")

// pyMethodNames are the names a payload dataclass defines besides its
// fields, which a field may not take.
var pyMethodNames = set("to_json", "from_json")

// pyAccessorLocals are the names an accessor's body uses besides its
// parameters.
var pyAccessorLocals = set("self")

// pyRuntimeErrors are the error classes the package has in any case (the
// runtime may define more; PythonModel reads them from _errors.py).
var pyRuntimeErrors = []string{"DecodeError", "EncodeError", "InvalidArgument", "StoragegenError"}

// pyExports are the names __init__.py exports besides the payload types
// and the error classes.
var pyExports = set("Store", "NanoDatetime")

var pyPackageRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// pyName is a schema name as a Python name: as it is, or with a trailing _
// when it is a keyword, a builtin or one of taken.
func pyName(name string, taken map[string]bool) string {
	if pyKeywords[name] || pyBuiltins[name] || taken[name] {
		return name + "_"
	}
	return name
}

// PythonPackageProblem says why name cannot be the generated Python
// package's name (the base name of the output directory), or "".
func PythonPackageProblem(name string) string {
	switch {
	case !pyPackageRE.MatchString(name):
		return fmt.Sprintf("package name %q (the base name of the output directory) is not a Python identifier (ASCII letters, digits and _, not starting with a digit)", name)
	case pyKeywords[name] && name != "_":
		return fmt.Sprintf("package name %q (the base name of the output directory) is a Python keyword", name)
	}
	return ""
}

// pyErrorClassRE finds the public classes of _errors.py.
var pyErrorClassRE = regexp.MustCompile(`(?m)^class ([A-Z][A-Za-z0-9_]*)\b`)

// pythonErrorNames are the error classes of the package: those of the
// embedded _errors.py, or pyRuntimeErrors while there is none.
func pythonErrorNames() []string {
	names := slices.Clone(pyRuntimeErrors)
	if src, err := pythonFiles.ReadFile("python/_errors.py"); err == nil {
		for _, m := range pyErrorClassRE.FindAllStringSubmatch(string(src), -1) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// PythonModel decides the Python names of a checked model for a package
// named pkg. A schema that has no Python form (a payload or field type
// that names a Go import path, a type named like one of the package's own
// exports) is refused with every problem at its position.
func PythonModel(m *Model, pkg string) (*PyModel, error) {
	if why := PythonPackageProblem(pkg); why != "" {
		return nil, fmt.Errorf("%s", why)
	}
	e := errs{file: m.Schema}
	pm := &PyModel{Schema: m.Schema, Package: pkg, Prefix: m.Prefix, Errors: pythonErrorNames()}
	reserved := map[string]string{}
	for n := range pyExports {
		reserved[n] = "its own class"
	}
	for _, n := range pm.Errors {
		reserved[n] = "its error class"
	}
	pyTypes := map[string]string{} // schema name → Python name
	for _, t := range m.Types {
		pt := &PyType{Name: t.Name, PyName: pyName(t.Name, nil), Doc: t.Doc}
		if why, ok := reserved[pt.PyName]; ok {
			e.add(t.Review.Pos, "type %q: the Python package exports %s %s from __init__.py already; rename the type", t.Name, why, pt.PyName)
		}
		pyTypes[t.Name] = pt.PyName
		for _, f := range t.Fields {
			if hasExternal(f.Type) {
				e.add(f.Pos, "type %q field %q: type %s names a Go import path, which has no Python form; the Python package cannot be generated from this schema", t.Name, f.Name, f.Type)
			}
			pt.Fields = append(pt.Fields, &PyField{Name: f.Name, PyName: pyName(f.Name, pyMethodNames), Type: f.Type, Optional: f.Optional, Doc: f.Doc})
		}
		pm.Types = append(pm.Types, pt)
	}
	payload := func(what string, r *TypeRef, n Notes) string {
		if r.Kind == External {
			e.add(n.PosOf("payload"), "%s: payload %s names a Go import path, which has no Python form; the Python package cannot be generated from this schema", what, r)
			return ""
		}
		return pyTypes[r.Name]
	}
	for _, q := range m.Queues {
		pe := entryOf(q.Name, q.Doc, q.Key, q.Params, payload(fmt.Sprintf("queue %q", q.Name), q.Payload, q.Review), "_queue_")
		pe.Reliable, pe.Shards, pe.Layout = q.Reliable, q.Shards, q.Layout.String()
		pe.KeyText = q.KeyOf(m.Prefix, q.Key.Template())
		delivery := "at-most-once"
		if r := q.Reliable; r != nil {
			delivery = fmt.Sprintf("at-least-once (lease %s, at most %d %s)", durationText(r.Lease), r.MaxDeliveries, pluralWord(r.MaxDeliveries, "delivery", "deliveries"))
		}
		if q.Shards > 1 {
			delivery += fmt.Sprintf(", %d shards (FIFO per shard)", q.Shards)
		}
		pe.Summary = fmt.Sprintf("The %s queue: key %s, payload %s, %s.", q.Name, pe.KeyText, q.Payload, delivery)
		pm.Queues = append(pm.Queues, pe)
	}
	for _, c := range m.Caches {
		pe := entryOf(c.Name, c.Doc, c.Key, c.Params, payload(fmt.Sprintf("cache %q", c.Name), c.Payload, c.Review), "_cache_")
		pe.Layout, pe.NoExpiry, pe.TTL = c.Layout.String(), c.NoExpiry, c.TTL.Seconds()
		pe.KeyText = keyspace.CacheKey(m.Prefix, c.Key.Template())
		ttl := "no expiry"
		if !c.NoExpiry {
			ttl = "ttl " + durationText(c.TTL)
		}
		pe.Summary = fmt.Sprintf("The %s cache entry: key %s, payload %s, %s.", c.Name, pe.KeyText, c.Payload, ttl)
		pm.Caches = append(pm.Caches, pe)
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return pm, nil
}

func entryOf(name, doc string, key *keyspace.Pattern, params []*Param, payload, varPrefix string) *PyEntry {
	pe := &PyEntry{Name: name, PyName: pyName(name, nil), VarName: varPrefix + name, Doc: doc, Key: key, Payload: payload, Codec: "_codec_" + payload, Shards: 1}
	for _, p := range params {
		pe.Params = append(pe.Params, &PyParam{Name: p.Name, PyName: pyName(p.Name, pyAccessorLocals), Int: p.Int})
	}
	return pe
}

// hasExternal reports whether t is, or contains, a type that names a Go
// import path.
func hasExternal(t *TypeRef) bool {
	switch t.Kind {
	case External:
		return true
	case Slice, Map:
		return hasExternal(t.Elem)
	}
	return false
}

// pyStr writes s as a Python string literal that reads back as s: in
// double quotes, ASCII only, with \\, \" and every rune outside printable
// ASCII escaped (\xNN, \uNNNN, \UNNNNNNNN). Nothing in s can end the
// literal or the line. Invalid UTF-8 cannot reach it (the checker refuses
// it), and would be written as U+FFFD.
func pyStr(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pyDocstring writes text as a docstring indented by indent: a """ literal
// that reads back as text, with \ and " escaped (so no """ can close it),
// newlines kept, and every rune that is not a visible character (a
// control, a line separator, a format character) escaped, as pyStr does.
// The checker has already refused hidden runes in doc text; escaping
// them again keeps the emitter safe on its own.
func pyDocstring(text, indent string) string {
	var b strings.Builder
	b.WriteString(indent + `"""`)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i, line := range lines {
		line = strings.TrimRight(line, " \t")
		if i > 0 {
			b.WriteByte('\n')
			if line != "" {
				b.WriteString(indent)
			}
		}
		for _, r := range line {
			switch {
			case r == '\\' || r == '"':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\t' || r >= 0x20 && r < 0x7f:
				b.WriteRune(r)
			case r < 0xa0 || hiddenRune(r) != "" || !unicode.IsPrint(r):
				if r < 0x100 {
					fmt.Fprintf(&b, `\x%02x`, r)
				} else if r < 0x10000 {
					fmt.Fprintf(&b, `\u%04x`, r)
				} else {
					fmt.Fprintf(&b, `\U%08x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	if len(lines) > 1 {
		b.WriteString("\n" + indent)
	}
	b.WriteString(`"""`)
	return b.String()
}
