package gen

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/storagegen/storagegen/internal/keyspace"
)

// load runs Parse and Check on src and returns the error lines.
func loadErrors(t *testing.T, src string) []string {
	t.Helper()
	_, err := Load("schema.yaml", []byte(src), CheckOptions{DefaultPackage: "generated"})
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// Every rule of the checker, with its exact positioned message.
func TestCheckRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"valid", `
version: 1
types:
  T: {fields: {a: string}}
queues:
  q: {payload: T}
caches:
  c: {payload: T, ttl: 1h}
`, nil},
		{"empty", ``, []string{"schema.yaml:1:1: schema is empty; it needs at least version: 1"}},
		{"not a mapping", `[1, 2]`, []string{"schema.yaml:1:1: schema must be a mapping with version, types, queues and caches, not a sequence"}},
		{"yaml syntax", "version: 1\nqueues: {a: b\n", []string{"schema.yaml:2:1: YAML syntax: did not find expected ',' or '}'"}},
		{"yaml syntax in a sequence", "version: 1\ntypes:\n  T:\n    fields: [a, b\n\nqueues: {}\n", []string{"schema.yaml:4:1: YAML syntax: did not find expected ',' or ']'"}},
		{"yaml bad key", "version: 1\nqueues:\n  a: b\n c: d\n", []string{"schema.yaml:4:2: YAML syntax: did not find expected key"}},
		{"yaml scanner", "a: b\nc\nd: e\n", []string{"schema.yaml:2:1: YAML syntax: could not find expected ':'"}},
		{"yaml indentation", "version: 1\n  bad: indent\n", []string{"schema.yaml:2:3: YAML syntax: mapping values are not allowed in this context; is this line indented deeper than the key above it? Keys of one mapping line up"}},
		{"ttl indented under a scalar", "version: 1\ntypes:\n  T: {fields: {a: string}}\ncaches:\n  c:\n    key: \"c:{id}\"\n    payload: T\n    doc: hello\n      ttl: 1h\n", []string{"schema.yaml:9:7: YAML syntax: mapping values are not allowed in this context; is this line indented deeper than the key above it? Keys of one mapping line up"}},
		// The library reports this at the line where the cache's mapping
		// starts (its first key, line 8); the ttl is on line 17.
		{"yaml mis-indented ttl", `version: 1
types:
  T: {fields: {a: string}}
queues:
  q: {payload: T}
caches:
  c:
    key: "c:{id}"
    payload: T
    doc: |
      What the cache holds,
      who writes it,
      and who reads it.
    lint_ignore:
      - long-ttl
      - long-key
      ttl: 1h
  d: {payload: T, ttl: 1h}
`, []string{"schema.yaml:17:7: YAML syntax: did not find expected '-' indicator"}},
		{"yaml mis-indented field", "version: 1\ntypes:\n  T:\n    fields:\n      a: string\n     b: string\n", []string{"schema.yaml:6:6: YAML syntax: did not find expected key"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"schema.yaml:2:1: schema has more than one YAML document"}},
		{"missing version", "package: x\n", []string{"schema.yaml:1:1: missing version (add version: 1)"}},
		{"wrong version", "version: 2\n", []string{`schema.yaml:1:10: version "2" is not supported; 1 is the only version`}},
		{"string version", "version: \"1\"\n", []string{`schema.yaml:1:10: version "1" is not supported; 1 is the only version`}},
		{"unknown top key", "version: 1\nqueue: {}\n", []string{`schema.yaml:2:1: schema has unknown key "queue" (known: version, package, prefix, types, queues, caches, allow_breaking, lint_ignore)`}},
		{"duplicate key", "version: 1\nqueues:\n  a: {payload: x.com/y.T}\n  a: {payload: x.com/y.T}\n", []string{`schema.yaml:4:3: queues has key "a" twice (first at line 3)`}},
		{"bad package", "version: 1\npackage: Gen-Erated\n", []string{`schema.yaml:2:10: package "Gen-Erated" is not a valid Go package name (lower case letters, digits and _, not a keyword)`}},
		{"keyword package", "version: 1\npackage: func\n", []string{`schema.yaml:2:10: package "func" is not a valid Go package name (lower case letters, digits and _, not a keyword)`}},
		{"bad prefix", "version: 1\nprefix: \"a{b\"\n", []string{`schema.yaml:2:9: prefix "a{b" has '{' at offset 1; a prefix may not contain spaces, % { } * ? [ ] \ or control bytes`}},
		{"types not a mapping", "version: 1\ntypes: [a]\n", []string{"schema.yaml:2:8: types must be a mapping, not a sequence"}},
		{"bad type name", "version: 1\ntypes:\n  node_message: {fields: {a: string}}\n", []string{`schema.yaml:3:3: type "node_message": name must be UpperCamelCase (like NodeMessage)`}},
		{"reserved type name", "version: 1\ntypes:\n  Store: {fields: {a: string}}\n", []string{`schema.yaml:3:3: type "Store": name is used by generated code (Store, Queues, Caches, New, Prefix)`}},
		{"alias names a type", "version: 1\ntypes:\n  JobsHandler: {fields: {a: string}}\nqueues:\n  jobs: {payload: JobsHandler, delivery: at-least-once}\n  other: {payload: JobsHandler}\n",
			[]string{`schema.yaml:5:3: queue "jobs": generated type JobsHandler, the queue's short name for its deliveries or handlers, is also declared under types (line 3); rename the type or the queue`}},
		{"no fields", "version: 1\ntypes:\n  T: {doc: x}\n", []string{`schema.yaml:3:3: type "T" has no fields`}},
		{"unknown type key", "version: 1\ntypes:\n  T: {fields: {a: string}, docs: x}\n", []string{`schema.yaml:3:28: type "T" has unknown key "docs" (known: doc, fields, allow_breaking, lint_ignore)`}},
		{"bad field name", "version: 1\ntypes:\n  T:\n    fields:\n      RunID: string\n", []string{`schema.yaml:5:7: type "T" field "RunID": name must be lower_snake_case`}},
		{"field go name clash", "version: 1\ntypes:\n  T:\n    fields:\n      node_id: string\n      node_i_d: string\n", []string{`schema.yaml:6:7: type "T" field "node_i_d": Go name NodeID is already used by field "node_id"`}},
		{"bad field type", "version: 1\ntypes:\n  T:\n    fields:\n      a: int8\n", []string{`schema.yaml:5:10: type "T" field "a": type "int8" is not a known type; want ` + allowedTypes}},
		{"unknown field type", "version: 1\ntypes:\n  T:\n    fields:\n      a: '[]Missing'\n", []string{`schema.yaml:5:10: type "T" field "a": unknown type Missing; declare it under types or write import/path.Missing`}},
		{"field missing type", "version: 1\ntypes:\n  T:\n    fields:\n      a: {optional: true}\n", []string{`schema.yaml:5:7: type "T" field "a": missing type`}},
		{"optional not bool", "version: 1\ntypes:\n  T:\n    fields:\n      a: {type: string, optional: yes please}\n", []string{`schema.yaml:5:35: type "T" field "a": optional must be true or false`}},
		{"unknown field key", "version: 1\ntypes:\n  T:\n    fields:\n      a: {type: string, omit: true}\n", []string{`schema.yaml:5:25: type "T" field "a" has unknown key "omit" (known: type, optional, doc)`}},
		{"recursive type", "version: 1\ntypes:\n  A: {fields: {b: B}}\n  B: {fields: {a: A, ok: '[]B'}}\n", []string{`schema.yaml:3:3: type "A" contains itself (A → B → A); use []A or map[string]A to break the cycle`}},
		{"bad queue name", "version: 1\nqueues:\n  NodeEdge: {payload: x.com/y.T}\n", []string{`schema.yaml:3:3: queue "NodeEdge": name must be lower_snake_case`}},
		{"queue go name clash", "version: 1\nqueues:\n  node_id: {payload: x.com/y.T}\n  node_i_d: {payload: x.com/y.T}\n", []string{`schema.yaml:4:3: queue "node_i_d": Go name NodeID is already used by queue "node_id"`}},
		{"missing payload", "version: 1\nqueues:\n  q: {key: q}\n", []string{`schema.yaml:3:3: queue "q": missing payload`}},
		{"undeclared payload", "version: 1\nqueues:\n  q: {payload: Nope}\n", []string{`schema.yaml:3:16: queue "q": payload Nope is not declared under types`}},
		{"builtin payload", "version: 1\nqueues:\n  q: {payload: string}\n", []string{`schema.yaml:3:16: queue "q": payload string must be a type declared under types or import/path.Type`}},
		{"unknown queue key", "version: 1\nqueues:\n  q: {payload: x.com/y.T, ttl: 1h}\n", []string{`schema.yaml:3:27: queue "q" has unknown key "ttl" (known: key, payload, doc, delivery, lease, max_deliveries, dedupe_window, shards, layout, allow_breaking, lint_ignore)`}},
		{"review keys", "version: 1\nallow_breaking: \"\"\nlint_ignore: [empty-prefix, no-such-rule]\nqueues:\n  q: {payload: x.com/y.T, allow_breaking: 42, lint_ignore: missing-doc}\n", []string{
			`schema.yaml:2:17: schema: allow_breaking must be a quoted reason, such as "old jobs were drained in the 2026-11 release"`,
			`schema.yaml:3:29: schema: lint_ignore names unknown rule "no-such-rule" (rules: id-separator, plain-ambiguous, missing-doc, long-ttl, empty-prefix, long-key, at-most-once, sharded-pattern)`,
			`schema.yaml:5:43: queue "q": allow_breaking must be a quoted reason, such as "old jobs were drained in the 2026-11 release"`,
			`schema.yaml:5:60: queue "q" lint_ignore must be a sequence, like [a, b], not a scalar`,
		}},
		{"unclosed brace", "version: 1\ncaches:\n  node_output: {key: \"{node_id_output\", payload: x.com/y.T, ttl: 1h}\n", []string{`schema.yaml:3:22: cache "node_output": key pattern "{node_id_output" has unclosed "{" at offset 0`}},
		{"empty braces", "version: 1\nqueues:\n  q: {key: \"a{}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": key pattern "a{}" has an empty placeholder "{}" at offset 1`}},
		{"placeholder twice", "version: 1\nqueues:\n  q: {key: \"{a}:{a}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": key pattern "{a}:{a}" uses placeholder {a} twice`}},
		{"unknown placeholder type", "version: 1\nqueues:\n  q: {key: \"{a:uuid}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": key pattern "{a:uuid}" has placeholder {a:uuid} with unknown type "uuid" (want string or int)`}},
		{"adjacent placeholders", "version: 1\nqueues:\n  q: {key: \"{a}{b}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": key pattern "{a}{b}" has placeholders {a} and {b} with no literal text between them`}},
		{"weak separator", "version: 1\nqueues:\n  q: {key: \"{a}-{b}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": key pattern "{a}-{b}" separates {a} and {b} only by "-"; values may contain letters, digits, '-' and '.', so put a separator such as ':' between them`}},
		{"placeholder case", "version: 1\nqueues:\n  q: {key: \"q:{nodeId}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": placeholder {nodeId} must be lower_snake_case`}},
		{"placeholder keyword", "version: 1\nqueues:\n  q: {key: \"q:{type}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": placeholder {type} becomes parameter type, which is a Go keyword; rename the placeholder`}},
		{"placeholder predeclared", "version: 1\nqueues:\n  q: {key: \"q:{len}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": placeholder {len} becomes parameter len, which is a predeclared Go identifier; rename the placeholder`}},
		{"placeholder param clash", "version: 1\nqueues:\n  q: {key: \"q:{a_id}:{a_i_d}\", payload: x.com/y.T}\n", []string{`schema.yaml:3:12: queue "q": placeholders {a_id} and {a_i_d} both become parameter aID`}},
		{"placeholder hides package", "version: 1\nqueues:\n  q: {key: \"q:{nodes}\", payload: example.com/engine/nodes.Output}\n", []string{`schema.yaml:3:12: queue "q": placeholder {nodes} becomes parameter nodes, which hides the package of example.com/engine/nodes; rename the placeholder`}},
		{"caches share a key", "version: 1\nprefix: \"flow:\"\ncaches:\n  by_id: {key: \"{id}\", payload: x.com/y.T, ttl: 1h}\n  settings: {key: \"settings:{name}\", payload: x.com/y.T, ttl: 1h}\n",
			[]string{`schema.yaml:5:19: cache "settings": key pattern "settings:{name}" can give the same key as cache "by_id"'s "{id}" at line 4, column 16: flow:cache:settings:a, {name}="a" here and {id}="settings:a" there; a value written through one would be read through the other, so make their literal text differ (such as a different word before the first placeholder)`}},
		{"queues share a key", "version: 1\nqueues:\n  jobs: {payload: x.com/y.T}\n  any: {key: \"{x}\", payload: x.com/y.T, delivery: at-least-once}\n",
			[]string{`schema.yaml:4:14: queue "any": key pattern "{x}" can give the same key as queue "jobs"'s "jobs" at line 3, column 3: queue:{jobs}, {x}="jobs" here and with no arguments there; a value written through one would be read through the other, so make their literal text differ (such as a different word before the first placeholder)`}},
		{"a queue and a cache never share a key", "version: 1\nqueues:\n  q: {key: \"{x}\", payload: x.com/y.T}\ncaches:\n  c: {key: \"{x}\", payload: x.com/y.T, ttl: 1h}\n", nil},
		{"escaping keeps keys apart", "version: 1\ncaches:\n  a: {key: \"k:{a}\", payload: x.com/y.T, ttl: 1h}\n  b: {key: \"k:{b}:x\", payload: x.com/y.T, ttl: 1h}\n", nil},
		{"long key pattern", "version: 1\nqueues:\n  q: {payload: x.com/y.T, key: \"" + strings.Repeat("k", 257) + "\"}\n", []string{`schema.yaml:3:32: queue "q": key pattern is 257 bytes, over the limit of 256`}},
		{"deep type", "version: 1\ntypes:\n  T: {fields: {a: \"" + strings.Repeat("[]", 33) + "int\"}}\n", []string{`schema.yaml:3:19: type "T" field "a": type "` + strings.Repeat("[]", 33) + `int" nests slices and maps more than 32 deep, the limit`}},
		{"100,000 deep", "version: 1\ntypes:\n  T: {fields: {a: \"" + strings.Repeat("[]", 100000) + "int\"}}\n", []string{`schema.yaml:3:19: type "T" field "a": type "` + strings.Repeat("[]", 40) + `…" nests slices and maps more than 32 deep, the limit`}},
		{"too large", "version: 1\n#" + strings.Repeat("x", MaxSchemaBytes), []string{`schema.yaml:1:1: schema is 1048588 bytes, over the limit of 1048576`}},
		{"alias bomb", aliasBomb(), []string{`schema.yaml:2052:17: schema has more than 200000 YAML nodes, counting each alias as the nodes it stands for; that is the limit`}},
		{"self alias", "version: 1\ntypes: &t\n  T: *t\n", []string{`schema.yaml:3:6: schema has more than 200000 YAML nodes, counting each alias as the nodes it stands for; that is the limit`}},
		{"too many entries", tooMany("caches", MaxEntries+1, "  c%d: {payload: x.com/y.T, ttl: 1h, key: \"c%d:{id}\"}\n"), []string{`schema.yaml:5003:3: schema declares 5001 queues and caches, over the limit of 5000`}},
		{"too many types", tooMany("types", MaxTypes+1, "  T%d: {fields: {a%d: string}}\n"), []string{`schema.yaml:5003:3: schema declares 5001 types, over the limit of 5000`}},
		{"missing ttl", "version: 1\ncaches:\n  c: {payload: x.com/y.T}\n", []string{`schema.yaml:3:3: cache "c": missing ttl (a duration such as 1h, or none to keep entries forever)`}},
		{"bad ttl", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: forever}\n", []string{`schema.yaml:3:32: cache "c": ttl "forever" is not a Go duration (like 90s, 1h30m) or none`}},
		{"local not a bool", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, local: yes please}\n", []string{`schema.yaml:3:43: cache "c": local must be true or false`}},
		{"local_size without local", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, local: false, local_size: 10}\n", []string{`schema.yaml:3:62: cache "c": local_size applies only with local: true`}},
		{"local_size zero", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, local: true, local_size: 0}\n", []string{`schema.yaml:3:61: cache "c": local_size 0 is outside 1..1000000`}},
		{"local_size too large", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, local: true, local_size: 1000001}\n", []string{`schema.yaml:3:61: cache "c": local_size 1000001 is outside 1..1000000`}},
		{"local_size not a number", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, local: true, local_size: \"10\"}\n", []string{`schema.yaml:3:61: cache "c": local_size "10" is not a whole number`}},
		{"shards zero", "version: 1\nqueues:\n  q: {payload: x.com/y.T, shards: 0}\n", []string{`schema.yaml:3:35: queue "q": shards 0 must be at least 1 (1 is an unsharded queue)`}},
		{"shards negative", "version: 1\nqueues:\n  q: {payload: x.com/y.T, delivery: at-least-once, shards: -3}\n", []string{`schema.yaml:3:60: queue "q": shards -3 must be at least 1 (1 is an unsharded queue)`}},
		{"shards over the limit", "version: 1\nqueues:\n  q: {payload: x.com/y.T, shards: 1025}\n", []string{`schema.yaml:3:35: queue "q": shards 1025 is over 1024, the most a queue may have`}},
		{"shards not a number", "version: 1\nqueues:\n  q: {payload: x.com/y.T, shards: many}\n", []string{`schema.yaml:3:35: queue "q": shards "many" is not a whole number`}},
		// layout: plain, its refusals, and keys that plain values let
		// two declarations share, across layouts and kinds of key.
		{"layout unknown", "version: 1\nqueues:\n  q: {payload: x.com/y.T, layout: escaped}\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, layout: true}\n", []string{
			`schema.yaml:3:35: queue "q": layout "escaped" must be tagged (the default: escaped values, a queue's keys under one hash tag) or plain (values as they are, as the Python storage system writes its keys)`,
			`schema.yaml:5:44: cache "c": layout "true" must be tagged (the default: escaped values, a queue's keys under one hash tag) or plain (values as they are, as the Python storage system writes its keys)`}},
		{"layout plain at-least-once", "version: 1\nqueues:\n  q: {payload: x.com/y.T, delivery: at-least-once, layout: plain}\n", []string{
			`schema.yaml:3:60: queue "q": layout plain cannot be at-least-once: the scripts of an at-least-once queue touch all its keys at once, which on a cluster must share one hash tag, and plain keys have none (a value may even bring its own); use the tagged layout, or delivery: at-most-once`}},
		{"layout plain sharded", "version: 1\nqueues:\n  q: {payload: x.com/y.T, shards: 4, layout: plain}\n", []string{
			`schema.yaml:3:46: queue "q": layout plain cannot have shards: 4: every shard but the first has a key of its own with a hash tag (queue:<i>:{…}), which is not a plain key, and the Python storage system has no shards; leave shards out or use the tagged layout`}},
		{"layout plain ok", "version: 1\nprefix: \"flow:\"\nqueues:\n  e: {key: \"queue_{s}_{t}\", payload: x.com/y.T, layout: plain, shards: 1}\n  jobs: {payload: x.com/y.T, delivery: at-least-once, shards: 4, layout: tagged}\ncaches:\n  o: {key: \"{id}_output\", payload: x.com/y.T, ttl: 1h, layout: plain}\n  s: {key: \"{id}:settings\", payload: x.com/y.T, ttl: 1h}\n", nil},
		{"layout plain reaches a tagged queue's parts", "version: 1\nqueues:\n  jobs: {payload: x.com/y.T, delivery: at-least-once}\n  raw: {key: \"{x}:leases\", payload: x.com/y.T, layout: plain}\n", []string{
			`schema.yaml:4:14: queue "raw": key pattern "{x}:leases" (layout plain) can give the same key as queue "jobs"'s "jobs" (layout tagged) at line 3, column 3: queue:{jobs}:leases, {x}="{jobs}" here and with no arguments (its leases key) there; plain values are inserted as they are (separators, braces and all), so a value written through one would be read through the other: make their literal text differ (such as a different word before the first placeholder), and begin a plain pattern with literal text`}},
		{"layout plain reaches a shard", "version: 1\nprefix: \"flow:\"\nqueues:\n  jobs: {payload: x.com/y.T, shards: 2}\n  raw: {key: \"1:{x}\", payload: x.com/y.T, layout: plain}\n", []string{
			`schema.yaml:5:14: queue "raw": key pattern "1:{x}" (layout plain) can give the same key as queue "jobs"'s "jobs" (layout tagged) at line 4, column 3: flow:queue:1:{jobs#1}, {x}="{jobs#1}" here and with no arguments (its shard 1 key) there; plain values are inserted as they are (separators, braces and all), so a value written through one would be read through the other: make their literal text differ (such as a different word before the first placeholder), and begin a plain pattern with literal text`}},
		{"layout plain dead letters", "version: 1\nqueues:\n  a: {key: \"q_{a}\", payload: x.com/y.T, layout: plain}\n  b: {key: \"q_{b}:dead\", payload: x.com/y.T, layout: plain}\n", []string{
			`schema.yaml:4:12: queue "b": key pattern "q_{b}:dead" (layout plain) can give the same key as queue "a"'s "q_{a}" (layout plain) at line 3, column 12: queue:q_a:dead, {b}="a" here and {a}="a" (its dead key) there; plain values are inserted as they are (separators, braces and all), so a value written through one would be read through the other: make their literal text differ (such as a different word before the first placeholder), and begin a plain pattern with literal text`}},
		{"layout plain cache and a tagged one", "version: 1\ncaches:\n  a: {key: \"{name}:settings\", payload: x.com/y.T, ttl: 1h}\n  b: {key: \"{id}_x\", payload: x.com/y.T, ttl: 1h, layout: plain}\n  c: {key: \"s_{id}\", payload: x.com/y.T, ttl: 1h, layout: plain}\n", []string{
			`schema.yaml:5:12: cache "c": key pattern "s_{id}" (layout plain) can give the same key as cache "a"'s "{name}:settings" (layout tagged) at line 3, column 12: cache:s_:settings, {id}=":settings" here and {name}="s_" there; plain values are inserted as they are (separators, braces and all), so a value written through one would be read through the other: make their literal text differ (such as a different word before the first placeholder), and begin a plain pattern with literal text`}},
		{"shards on a cache", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1h, shards: 2}\n", []string{`schema.yaml:3:36: cache "c" has unknown key "shards" (known: key, payload, ttl, doc, local, local_size, layout, allow_breaking, lint_ignore)`}},
		{"local on a queue", "version: 1\nqueues:\n  q: {payload: x.com/y.T, local: true}\n", []string{`schema.yaml:3:27: queue "q" has unknown key "local" (known: key, payload, doc, delivery, lease, max_deliveries, dedupe_window, shards, layout, allow_breaking, lint_ignore)`}},
		{"zero ttl", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 0s}\n", []string{`schema.yaml:3:32: cache "c": ttl 0s must be positive; write none for no expiry`}},
		{"negative ttl", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: -1h}\n", []string{`schema.yaml:3:32: cache "c": ttl -1h must be positive; write none for no expiry`}},
		{"sub-ms ttl", "version: 1\ncaches:\n  c: {payload: x.com/y.T, ttl: 1500us}\n", []string{`schema.yaml:3:32: cache "c": ttl 1500us is not a whole number of milliseconds`}},
		{"scalar expected", "version: 1\ncaches:\n  c: {payload: [a], ttl: 1h}\n", []string{`schema.yaml:3:3: cache "c": missing payload`, `schema.yaml:3:16: cache "c" payload must be a scalar, not a sequence`}},
		{"every error at once, sorted", `
version: 3
types:
  T:
    fields:
      Bad: string
queues:
  q: {key: "{x", payload: T}
caches:
  c: {payload: T}
`, []string{
			`schema.yaml:1:10: version "3" is not supported; 1 is the only version`,
			`schema.yaml:5:7: type "T" field "Bad": name must be lower_snake_case`,
			`schema.yaml:7:12: queue "q": key pattern "{x" has unclosed "{" at offset 0`,
			`schema.yaml:9:3: cache "c": missing ttl (a duration such as 1h, or none to keep entries forever)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := loadErrors(t, strings.TrimPrefix(tc.src, "\n"))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckModel(t *testing.T) {
	src := `
version: 1
prefix: "flow:"
types:
  Out:
    doc: An output.
    fields:
      run_id: string
      error: {type: string, optional: true, doc: Set on failure.}
caches:
  attempt_log: {key: "attempt:{run_id}:{attempt:int}", payload: Out, ttl: 24h}
  forever: {payload: Out, ttl: none}
queues:
  jobs: {payload: example.com/engine/nodes.Output}
`
	m, err := Load("dir/schema.yaml", []byte(src), CheckOptions{DefaultPackage: "out"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Model{
		Schema: "schema.yaml", Package: "out", Prefix: "flow:",
		Types: []*TypeSpec{{Name: "Out", Doc: "An output.", Fields: []*FieldSpec{
			{Name: "run_id", GoName: "RunID", Type: &TypeRef{Kind: Builtin, Name: "string"}},
			{Name: "error", GoName: "Error", Type: &TypeRef{Kind: Builtin, Name: "string"}, Optional: true, Doc: "Set on failure."},
		}}},
		Imports: map[string]string{"example.com/engine/nodes": "nodes"},
		Queues: []*QueueSpec{{Name: "jobs", GoName: "Jobs", VarName: "queueJobs", Key: keyspace.MustParsePattern("jobs"),
			Payload: &TypeRef{Kind: External, Path: "example.com/engine/nodes", Name: "Output"}, Shards: 1}},
		Caches: []*CacheSpec{
			{Name: "attempt_log", GoName: "AttemptLog", VarName: "cacheAttemptLog", Key: keyspace.MustParsePattern("attempt:{run_id}:{attempt:int}"),
				Params:  []*Param{{Name: "run_id", GoName: "runID"}, {Name: "attempt", GoName: "attempt", Int: true}},
				Payload: &TypeRef{Kind: Declared, Name: "Out"}, TTL: 24 * time.Hour},
			{Name: "forever", GoName: "Forever", VarName: "cacheForever", Key: keyspace.MustParsePattern("forever"), Payload: &TypeRef{Kind: Declared, Name: "Out"}, NoExpiry: true},
		},
	}
	if diff := cmp.Diff(want, m, cmpopts.IgnoreTypes(Notes{}), cmpopts.IgnoreFields(FieldSpec{}, "Pos"),
		cmp.Comparer(func(a, b *keyspace.Pattern) bool { return a.String() == b.String() })); diff != "" {
		t.Errorf("model (-want +got):\n%s", diff)
	}
	// What review reads: where entries and their keys stand.
	if diff := cmp.Diff(Notes{Pos: Pos{11, 3}, At: map[string]Pos{"key": {11, 22}, "payload": {11, 65}, "ttl": {11, 75}}}, m.Caches[0].Review); diff != "" {
		t.Errorf("cache notes (-want +got):\n%s", diff)
	}
	if p := m.Types[0].Fields[1].Pos; p != (Pos{9, 7}) {
		t.Errorf("field position %v, want 9:7", p)
	}

	// -package wins over the schema, which wins over the directory.
	m, _ = Load("schema.yaml", []byte("version: 1\npackage: fromschema\n"), CheckOptions{Package: "fromflag", DefaultPackage: "dir"})
	if m.Package != "fromflag" {
		t.Errorf("package = %q, want fromflag", m.Package)
	}
	m, _ = Load("schema.yaml", []byte("version: 1\npackage: fromschema\n"), CheckOptions{DefaultPackage: "dir"})
	if m.Package != "fromschema" {
		t.Errorf("package = %q, want fromschema", m.Package)
	}
}

// aliasBomb is the example: a map of 2,000 fields and 500 aliases
// of it, 46 KB that stood for a million nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("version: 1\nx: &m\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  f%d: string\n", i)
	}
	b.WriteString("types:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  T%d: {fields: *m}\n", i)
	}
	return b.String()
}

// tooMany is a schema with n entries under section, each line made with
// format and the entry's number.
func tooMany(section string, n int, format string) string {
	var b strings.Builder
	b.WriteString("version: 1\n" + section + ":\n")
	for i := range n {
		fmt.Fprintf(&b, format, i, i)
	}
	return b.String()
}
