package gen

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// JSONSchema returns a JSON Schema (draft 2020-12) for schema.yaml, for
// editors: with it, yaml-language-server completes keys, shows their
// documentation and flags shape errors as you type. It covers the shape
// (keys, kinds, names, durations, enums); the checker remains the judge of
// meaning (declared types, key patterns, Go names).
func JSONSchema() []byte {
	b, err := json.MarshalIndent(jsonSchema(), "", "  ")
	if err != nil {
		panic(err) // maps of strings, bools, numbers and slices always marshal
	}
	return append(b, '\n')
}

type obj = map[string]any

func jsonSchema() obj {
	str := func(desc string) obj { return obj{"type": "string", "description": desc} }
	ref := func(name string) obj { return obj{"$ref": "#/$defs/" + name} }
	named := func(pattern, desc string, item obj) obj {
		return obj{
			"type":                 []string{"object", "null"},
			"description":          desc,
			"propertyNames":        obj{"pattern": pattern},
			"additionalProperties": item,
		}
	}
	review := func(props obj) obj {
		props["allow_breaking"] = ref("allowBreaking")
		props["lint_ignore"] = ref("lintIgnore")
		return props
	}
	reliableOnly := []string{"lease", "max_deliveries", "dedupe_window"}
	shardsDoc := fmt.Sprintf("How many lists the queue is spread over, each with its own hash tag, so that a hot queue can use that many cluster primaries; FIFO per shard only; 1 to %d; default 1 (an unsharded queue).", keyspace.MaxShards)
	notReliable := obj{}
	for _, k := range reliableOnly {
		notReliable[k] = false
	}
	layouts := []string{keyspace.Tagged.String(), keyspace.Plain.String()}
	const layoutDoc = "How placeholder values become keys: tagged (default: escaped, a queue's keys under one hash tag) or plain (values as they are, as the Python storage system writes <prefix>queue:<name> and <prefix>cache:<key>; two argument tuples can give one key)."
	ids := lintRuleIDs()
	slices.Sort(ids)

	return obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://github.com/storagegen/storagegen/storagegen.schema.json",
		"title":                "storagegen schema",
		"description":          "Redis queues and caches with their payload types; `go generate` turns this file into typed Go. See README.md.",
		"type":                 "object",
		"required":             []string{"version"},
		"additionalProperties": false,
		"properties": review(obj{
			"version": obj{"const": 1, "description": "Schema version; 1 is the only one."},
			"package": obj{"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "description": "Go package name of the generated code (default: the base name of -out)."},
			"prefix":  obj{"type": "string", "pattern": "^[^ %{}*?\\[\\]\\\\<>\x00-\x1f\x7f]*$", "description": "Text before every key, such as \"flow:\"; no spaces, % { } * ? [ ] \\ < > or control bytes."},
			"types":   named("^[A-Z][A-Za-z0-9]*$", "Payload structs, by UpperCamelCase name.", ref("type")),
			"queues":  named("^[a-z][a-z0-9]*(_[a-z0-9]+)*$", "Queues, by lower_snake_case name.", ref("queue")),
			"caches":  named("^[a-z][a-z0-9]*(_[a-z0-9]+)*$", "Caches, by lower_snake_case name.", ref("cache")),
		}),
		"$defs": obj{
			"type": obj{
				"type":                 "object",
				"required":             []string{"fields"},
				"additionalProperties": false,
				"properties": review(obj{
					"doc": str("The struct's doc comment."),
					"fields": obj{
						"type":                 "object",
						"description":          "The struct's fields, by lower_snake_case name, which is also the JSON name.",
						"minProperties":        1,
						"propertyNames":        obj{"pattern": "^[a-z][a-z0-9]*(_[a-z0-9]+)*$"},
						"additionalProperties": ref("field"),
					},
				}),
			},
			"field": obj{
				"description": "A field type (bool, string, int, int32, int64, uint32, uint64, float32, float64, []byte, time.Time, any, []T, map[string]T, a declared type, or import/path.Type), or {type, optional, doc}.",
				"oneOf": []obj{
					ref("typeExpr"),
					{
						"type":                 "object",
						"required":             []string{"type"},
						"additionalProperties": false,
						"properties": obj{
							"type":     ref("typeExpr"),
							"optional": obj{"type": "boolean", "description": "Omit the zero value from JSON (omitzero); default false."},
							"doc":      str("The field's comment."),
						},
					},
				},
			},
			"typeExpr": obj{"type": "string", "minLength": 1, "description": "A field or payload type."},
			"queue": obj{
				"type":                 "object",
				"required":             []string{"payload"},
				"additionalProperties": false,
				"properties": review(obj{
					"key":            str("Key pattern with {placeholders} ({name} or {name:int}); default: the queue's name."),
					"payload":        str("A type under types, or import/path.Type."),
					"doc":            str("The accessor's doc comment."),
					"delivery":       obj{"enum": []string{atMostOnce, atLeastOnce}, "description": "at-most-once (default: Queue with Pop) or at-least-once (ReliableQueue: leases, acks, retries, dead letters)."},
					"lease":          obj{"allOf": []obj{ref("duration")}, "description": "At-least-once: how long a delivery holds its item; at least 1s; default 30s."},
					"max_deliveries": obj{"type": "integer", "minimum": 1, "description": "At-least-once: deliveries before an item becomes a dead letter; default 5."},
					"dedupe_window":  obj{"allOf": []obj{ref("duration")}, "description": "At-least-once: how long a pushed ID is remembered; at least 1s; default 1h."},
					"shards":         obj{"type": "integer", "minimum": 1, "maximum": keyspace.MaxShards, "description": shardsDoc},
					"layout":         obj{"enum": layouts, "description": layoutDoc + " Plain only on an unsharded at-most-once queue."},
				}),
				"allOf": []obj{
					{
						"if":   obj{"not": obj{"required": []string{"delivery"}, "properties": obj{"delivery": obj{"const": atLeastOnce}}}},
						"then": obj{"properties": notReliable},
					},
					{
						"if":   obj{"required": []string{"layout"}, "properties": obj{"layout": obj{"const": keyspace.Plain.String()}}},
						"then": obj{"properties": obj{"delivery": obj{"const": atMostOnce}, "shards": obj{"const": 1}}},
					},
				},
			},
			"cache": obj{
				"type":                 "object",
				"required":             []string{"payload", "ttl"},
				"additionalProperties": false,
				"properties": review(obj{
					"key":        str("Key pattern with {placeholders} ({name} or {name:int}); default: the cache's name."),
					"payload":    str("A type under types, or import/path.Type."),
					"doc":        str("The accessor's doc comment."),
					"ttl":        obj{"anyOf": []obj{ref("duration"), {"const": "none"}}, "description": "A Go duration in whole milliseconds (90s, 1h30m), or none for entries that never expire."},
					"local":      obj{"type": "boolean", "description": "Keep entries in each process's memory, invalidated by Redis (client-side caching); default false."},
					"local_size": obj{"type": "integer", "minimum": 1, "maximum": MaxLocalSize, "description": fmt.Sprintf("With local: true, the most entries kept in memory; default %d.", DefaultLocalSize)},
					"layout":     obj{"enum": layouts, "description": layoutDoc},
				}),
				"if":   obj{"not": obj{"required": []string{"local"}, "properties": obj{"local": obj{"const": true}}}},
				"then": obj{"properties": obj{"local_size": false}},
			},
			"duration": obj{
				"type":    "string",
				"pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
			},
			"allowBreaking": obj{"type": "string", "pattern": `\S`, "description": "Why the breaking changes of this entry (or, at the top, of the prefix and removed entries) are accepted; storagegen diff reports them as allowed."},
			"lintIgnore":    obj{"type": "array", "items": obj{"enum": ids}, "description": "Lint rules not to apply here."},
		},
	}
}
