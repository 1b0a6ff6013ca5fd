package gen

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/storagegen/storagegen/runtime/lua"
)

// pythonFiles are the hand-written modules of the Python package (the
// runtime and the codec helpers), copied into every generated package
// under the generated-code header.
//
//go:embed python/*.py
var pythonFiles embed.FS

// PythonHeader returns the first line of every generated Python file.
func PythonHeader(schema string) string { return "# " + Header(schema) }

// GeneratePython renders a Python package: file name (slash-separated,
// relative to the package directory) → contents. The output depends only
// on the model, byte for byte.
//
// Every name it writes was decided by PythonModel (identifiers of ASCII
// letters, digits and _); every string that comes from the schema is
// written by pyStr (an ASCII literal that nothing can end early) or
// pyDocstring (a docstring whose quotes and backslashes are escaped), or
// as a # comment line whose text has no line break. So no schema text can
// become Python code, whatever the checker lets through.
func GeneratePython(pm *PyModel) (map[string][]byte, error) {
	header := PythonHeader(pm.Schema) + "\n"
	out := map[string][]byte{
		"__init__.py": []byte(header + pyInit(pm)),
		"types.py":    []byte(header + pyTypesFile(pm)),
		"store.py":    []byte(header + pyStoreFile(pm)),
		"py.typed":    {},
	}
	copied, err := fs.Glob(pythonFiles, "python/*.py")
	if err != nil {
		return nil, err
	}
	for _, path := range copied {
		src, err := pythonFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(path, "python/")] = append([]byte(header), src...)
	}
	scripts, err := fs.Glob(lua.Files, "*.lua")
	if err != nil {
		return nil, err
	}
	for _, name := range scripts {
		src, err := lua.Files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out["lua/"+name] = src
	}
	for name, src := range out {
		if strings.HasSuffix(name, ".py") && !strings.HasPrefix(string(src), header) {
			return nil, fmt.Errorf("generated %s lacks its header, which is a bug in storagegen", name)
		}
	}
	return out, nil
}

// pyInit emits __init__.py: the package docstring and its exports.
func pyInit(pm *PyModel) string {
	var b strings.Builder
	b.WriteString(pyDocstring(fmt.Sprintf(`Package %s: typed asyncio access to the Redis queues and caches declared in %s.

Store(client) takes a redis.asyncio client (redis-py 4.2 or later); its
queues and caches attributes have one accessor per queue and cache of the
schema. The payload types are dataclasses whose to_json and from_json
read the JSON of the Go side and write JSON it reads as the same values.`, pm.Package, pm.Schema), "") + "\n\n")
	b.WriteString("from ._codec import NanoDatetime\n")
	b.WriteString("from ._errors import " + strings.Join(pm.Errors, ", ") + "\n")
	b.WriteString("from .store import Store\n")
	exports := append([]string{"NanoDatetime", "Store"}, pm.Errors...)
	if len(pm.Types) > 0 {
		var names []string
		for _, t := range pm.Types {
			names = append(names, t.PyName)
		}
		b.WriteString("from .types import " + strings.Join(names, ", ") + "\n")
		exports = append(exports, names...)
	}
	slices.Sort(exports)
	b.WriteString("\n__all__ = [\n")
	for _, n := range exports {
		b.WriteString("    " + pyStr(n) + ",\n")
	}
	b.WriteString("]\n")
	return b.String()
}

// pyTypesFile emits types.py: one dataclass per payload type.
func pyTypesFile(pm *PyModel) string {
	var b strings.Builder
	b.WriteString(pyDocstring("The payload types of "+pm.Schema+", one dataclass each.", "") + "\n\n")
	b.WriteString("from __future__ import annotations\n\n")
	b.WriteString("import dataclasses as _dc\nimport datetime as _dt\nimport typing as _t\n\n")
	b.WriteString("from . import _codec as _c\n")
	for _, t := range pm.Types {
		b.WriteString("\n\n" + pyTypeDecl(t))
	}
	return b.String()
}

// pyTypeDecl emits a payload dataclass:
//
//	@_dc.dataclass(kw_only=True)
//	class NodeOutput:
//	    """NodeOutput is a payload type of the schema. …"""
//
//	    node_id: str
//	    #: Set when status is failed.
//	    error: str | None = None
//
//	    def to_json(self) -> bytes: …
//	    @classmethod
//	    def from_json(cls, data: bytes | str) -> NodeOutput: …
//
// with the encoder and decoder (_obj, _enc, _dec) that to_json and
// from_json call, and that enclosing types call for nested values.
func pyTypeDecl(t *PyType) string {
	var b strings.Builder
	doc := t.Name + " is a payload type of the schema."
	if d := strings.TrimSpace(t.Doc); d != "" {
		doc += "\n\n" + d
	}
	b.WriteString("@_dc.dataclass(kw_only=True)\n")
	b.WriteString("class " + t.PyName + ":\n")
	b.WriteString(pyDocstring(doc, "    ") + "\n\n")
	for _, f := range t.Fields {
		if d := strings.TrimSpace(f.Doc); d != "" {
			b.WriteString(pyComment(d, "    #: "))
		}
		if f.Optional {
			b.WriteString(fmt.Sprintf("    %s: %s | None = None\n", f.PyName, pyAnnotation(f.Type)))
		} else {
			b.WriteString(fmt.Sprintf("    %s: %s\n", f.PyName, pyAnnotation(f.Type)))
		}
	}
	name := pyStr(t.Name)
	b.WriteString("\n    def to_json(self) -> bytes:\n")
	b.WriteString(`        """Returns JSON the Go side reads as this value; raises EncodeError naming the field."""` + "\n")
	// The store's codec calls to_json unbound (Type.to_json), so self may
	// be a value of another type that an untyped caller passed: it is
	// refused, not written as one (Go would read it as a zero value).
	b.WriteString("        if not isinstance(self, " + t.PyName + "):\n")
	b.WriteString("            _c.wrong_type(" + name + ", " + name + ", self)\n")
	b.WriteString("        return _c.dumps(self._obj(" + name + "), " + name + ")\n")
	b.WriteString("\n    @classmethod\n")
	b.WriteString("    def from_json(cls, data: bytes | str) -> " + t.PyName + ":\n")
	b.WriteString(`        """Reads a value from JSON as the Go side does; raises DecodeError naming the field."""` + "\n")
	b.WriteString("        return cls._dec(_c.loads(data, " + name + "), " + name + ")\n")

	b.WriteString("\n    def _obj(self, path: str) -> dict[str, object]:\n")
	b.WriteString("        out: dict[str, object] = {}\n")
	for _, f := range t.Fields {
		member := pyStr(f.Name)
		value := "self." + f.PyName
		call := pyEncCall(f.Type, value, "path + "+pyStr("."+f.Name))
		switch {
		case !f.Optional:
			b.WriteString("        out[" + member + "] = " + call + "\n")
		case omitsZero(f.Type):
			b.WriteString("        if not _c.omitted(" + value + "):\n")
			b.WriteString("            out[" + member + "] = " + call + "\n")
		default:
			b.WriteString("        if " + value + " is not None:\n")
			b.WriteString("            out[" + member + "] = " + call + "\n")
		}
	}
	b.WriteString("        return out\n")

	b.WriteString("\n    @staticmethod\n")
	b.WriteString("    def _enc(v: object, path: str) -> object:\n")
	b.WriteString("        if not isinstance(v, " + t.PyName + "):\n")
	b.WriteString("            _c.wrong_type(path, " + pyStr(t.Name) + ", v)\n")
	b.WriteString("        return v._obj(path)\n")

	b.WriteString("\n    @classmethod\n")
	b.WriteString("    def _dec(cls, obj: object, path: str) -> " + t.PyName + ":\n")
	b.WriteString("        m = _c.dec_object(obj, path)\n")
	b.WriteString("        return cls(\n")
	for _, f := range t.Fields {
		get := "m.get(" + pyStr(f.Name) + ")"
		p := "path + " + pyStr("."+f.Name)
		if f.Optional {
			b.WriteString("            " + f.PyName + "=_c.dec_optional(" + get + ", " + p + ", " + pyDecFn(f.Type) + "),\n")
		} else {
			b.WriteString("            " + f.PyName + "=" + pyDecCall(f.Type, get, p) + ",\n")
		}
	}
	b.WriteString("        )\n")
	return b.String()
}

// omitsZero reports whether an optional field of type t is left out when
// it holds Go's zero value as well as when it is None: the scalar types,
// whose zero Python and Go agree on (see _codec.omitted).
func omitsZero(t *TypeRef) bool {
	return t.Kind == Time || t.Kind == Declared || t.Kind == Builtin && t.Name != "any"
}

// pyAnnotation is the Python type of a field.
func pyAnnotation(t *TypeRef) string {
	switch t.Kind {
	case Bytes:
		return "bytes"
	case Time:
		return "_dt.datetime"
	case Slice:
		return "list[" + pyAnnotation(t.Elem) + "]"
	case Map:
		return "dict[str, " + pyAnnotation(t.Elem) + "]"
	case Declared:
		return pyName(t.Name, nil)
	}
	switch t.Name {
	case "bool":
		return "bool"
	case "string":
		return "str"
	case "float32", "float64":
		return "float"
	case "any":
		return "_t.Any"
	}
	return "int"
}

// pyCodecName is the _codec function suffix of a scalar type: str, int64, …
func pyCodecName(t *TypeRef) string {
	switch t.Kind {
	case Bytes:
		return "bytes"
	case Time:
		return "time"
	}
	switch t.Name {
	case "string":
		return "str"
	case "int", "int32", "int64", "uint32", "uint64", "float32", "float64", "bool", "any":
		return t.Name
	}
	panic("storagegen: no Python codec for " + t.String())
}

// pyEncFn is an encoder of t: a callable (value, path) → JSON value.
func pyEncFn(t *TypeRef) string {
	switch t.Kind {
	case Slice, Map:
		return "lambda v, p: " + pyEncCall(t, "v", "p")
	case Declared:
		return pyName(t.Name, nil) + "._enc"
	}
	return "_c.enc_" + pyCodecName(t)
}

// pyEncCall encodes value at path.
func pyEncCall(t *TypeRef, value, path string) string {
	switch t.Kind {
	case Slice:
		return "_c.enc_list(" + value + ", " + path + ", " + pyEncFn(t.Elem) + ")"
	case Map:
		return "_c.enc_map(" + value + ", " + path + ", " + pyEncFn(t.Elem) + ")"
	}
	return pyEncFn(t) + "(" + value + ", " + path + ")"
}

// pyDecFn is a decoder of t: a callable (JSON value, path) → value.
func pyDecFn(t *TypeRef) string {
	switch t.Kind {
	case Slice, Map:
		return "lambda o, p: " + pyDecCall(t, "o", "p")
	case Declared:
		return pyName(t.Name, nil) + "._dec"
	}
	return "_c.dec_" + pyCodecName(t)
}

// pyDecCall decodes the JSON value obj at path.
func pyDecCall(t *TypeRef, obj, path string) string {
	switch t.Kind {
	case Slice:
		return "_c.dec_list(" + obj + ", " + path + ", " + pyDecFn(t.Elem) + ")"
	case Map:
		return "_c.dec_map(" + obj + ", " + path + ", " + pyDecFn(t.Elem) + ")"
	}
	return pyDecFn(t) + "(" + obj + ", " + path + ")"
}

// pyStoreFile emits store.py: the declarations, the codecs, and the
// Store with one accessor per queue and cache.
func pyStoreFile(pm *PyModel) string {
	var b strings.Builder
	b.WriteString(pyDocstring("Typed access to the Redis queues and caches declared in "+pm.Schema+".", "") + "\n\n")
	b.WriteString("from __future__ import annotations\n\n")
	b.WriteString("import typing as _t\n\n")
	if len(pm.Queues)+len(pm.Caches) > 0 {
		b.WriteString("from . import types as _types\n")
	}
	b.WriteString("from ._reliable import ReliableQueue as _ReliableQueue\n")
	b.WriteString("from ._runtime import Cache as _Cache\n")
	b.WriteString("from ._runtime import CacheDecl as _CacheDecl\n")
	b.WriteString("from ._runtime import Codec as _Codec\n")
	b.WriteString("from ._runtime import KeyPattern as _KeyPattern\n")
	b.WriteString("from ._runtime import Queue as _Queue\n")
	b.WriteString("from ._runtime import QueueDecl as _QueueDecl\n\n")
	b.WriteString("PREFIX = " + pyStr(pm.Prefix) + "\n")
	b.WriteString(`"""Prepended to every key of the schema."""` + "\n")

	// One codec per payload type, in the order of the types.
	used := map[string]bool{}
	for _, e := range append(slices.Clone(pm.Queues), pm.Caches...) {
		used[e.Payload] = true
	}
	b.WriteString("\n")
	for _, t := range pm.Types {
		if used[t.PyName] {
			b.WriteString(fmt.Sprintf("_codec_%s: _Codec[_types.%s] = _Codec(%s, _types.%s.to_json, _types.%s.from_json)\n",
				t.PyName, t.PyName, pyStr(t.Name), t.PyName, t.PyName))
		}
	}
	for _, q := range pm.Queues {
		b.WriteString("\n" + pyQueueDecl(q))
	}
	for _, c := range pm.Caches {
		b.WriteString("\n" + pyCacheDecl(c))
	}

	b.WriteString("\n\nclass Queues:\n")
	b.WriteString(`    """One accessor per queue of the schema."""` + "\n\n")
	b.WriteString("    def __init__(self, redis: _t.Any) -> None:\n        self._r = redis\n")
	for _, q := range pm.Queues {
		kind, cls := "_Queue", "_Queue"
		if q.Reliable != nil {
			kind, cls = "_ReliableQueue", "_ReliableQueue"
		}
		b.WriteString("\n" + pyAccessor(q, kind+"[_types."+q.Payload+"]", cls))
	}
	b.WriteString("\n\nclass Caches:\n")
	b.WriteString(`    """One accessor per cache of the schema."""` + "\n\n")
	b.WriteString("    def __init__(self, redis: _t.Any) -> None:\n        self._r = redis\n")
	for _, c := range pm.Caches {
		b.WriteString("\n" + pyAccessor(c, "_Cache[_types."+c.Payload+"]", "_Cache"))
	}
	b.WriteString(`

class Store:
    """Typed access to the queues and caches of the schema.

    redis is a redis.asyncio client (redis-py 4.2 or later). redis-py 4.3
    ships no type information, so the client is typed Any here.
    """

    queues: Queues
    """One accessor per queue."""
    caches: Caches
    """One accessor per cache."""

    def __init__(self, redis: _t.Any) -> None:
        self.queues = Queues(redis)
        self.caches = Caches(redis)
`)
	return b.String()
}

// pyQueueDecl emits a queue's declaration:
//
//	_queue_jobs = _QueueDecl(
//	    name="jobs",
//	    prefix=PREFIX,
//	    key=_KeyPattern("jobs"),
//	    layout="tagged",
//	    reliable=True,
//	    lease=30.0,
//	    max_deliveries=5,
//	    dedupe_window=3600.0,
//	)
func pyQueueDecl(q *PyEntry) string {
	args := pyDeclArgs(q)
	if r := q.Reliable; r != nil {
		args = append(args, "reliable=True", "lease="+pySeconds(r.Lease.Seconds()),
			"max_deliveries="+strconv.Itoa(r.MaxDeliveries), "dedupe_window="+pySeconds(r.DedupeWindow.Seconds()))
	}
	if q.Shards > 1 {
		args = append(args, "shards="+strconv.Itoa(q.Shards))
	}
	return q.VarName + " = _QueueDecl(\n    " + strings.Join(args, ",\n    ") + ",\n)\n"
}

// pyCacheDecl emits a cache's declaration, like pyQueueDecl, with its TTL
// in seconds (None for ttl: none).
func pyCacheDecl(c *PyEntry) string {
	ttl := "None"
	if !c.NoExpiry {
		ttl = pySeconds(c.TTL)
	}
	args := append(pyDeclArgs(c), "ttl="+ttl)
	return c.VarName + " = _CacheDecl(\n    " + strings.Join(args, ",\n    ") + ",\n)\n"
}

func pyDeclArgs(e *PyEntry) []string {
	return []string{"name=" + pyStr(e.Name), "prefix=PREFIX", "key=_KeyPattern(" + pyStr(e.Key.String()) + ")", "layout=" + pyStr(e.Layout)}
}

// pySeconds writes seconds as a Python float literal: 30.0, 1.5.
func pySeconds(s float64) string {
	t := strconv.FormatFloat(s, 'f', -1, 64)
	if !strings.Contains(t, ".") {
		t += ".0"
	}
	return t
}

// pyAccessor emits one accessor method:
//
//	def node_edge(self, source_id: str, target_id: str) -> _Queue[_types.NodeMessage]:
//	    """The node_edge queue: key …, payload NodeMessage, at-most-once. …"""
//	    return _Queue(self._r, _queue_node_edge, _codec_NodeMessage, source_id, target_id)
func pyAccessor(e *PyEntry, result, cls string) string {
	params := []string{"self"}
	args := []string{"self._r", e.VarName, e.Codec}
	for _, p := range e.Params {
		typ := "str"
		if p.Int {
			typ = "int"
		}
		params = append(params, p.PyName+": "+typ)
		args = append(args, p.PyName)
	}
	doc := e.Summary
	if d := strings.TrimSpace(e.Doc); d != "" {
		doc += "\n\n" + d
	}
	return "    def " + e.PyName + "(" + strings.Join(params, ", ") + ") -> " + result + ":\n" +
		pyDocstring(doc, "        ") + "\n" +
		"        return " + cls + "(" + strings.Join(args, ", ") + ")\n"
}

// pyComment writes text as comment lines that each begin with lead, with
// the escaping of pyDocstring for runes that are not visible (a comment
// ends only at a line break, which text has only between its lines).
func pyComment(text, lead string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRight(line, " \t")
		var l strings.Builder
		for _, r := range line {
			if r == '\t' || r >= 0x20 && r < 0x7f || r >= 0xa0 && hiddenRune(r) == "" && unicode.IsPrint(r) {
				l.WriteRune(r)
			} else {
				fmt.Fprintf(&l, `\u%04x`, r)
			}
		}
		b.WriteString(strings.TrimRight(lead+l.String(), " ") + "\n")
	}
	return b.String()
}
