// Package keyspace is the one place where storagegen's Redis keys are
// defined: the key-pattern grammar of the schema, the escaping of
// placeholder values and its inverse, the prefix rule, the key of every
// queue and cache with its Redis type, and the defaults of at-least-once
// queues.
//
// It imports nothing from Redis, so the generator (which needs the grammar
// and the keys to check a schema and to document it) and the runtime (which
// needs the keys to talk to Redis) both import it and neither imports the
// other.
package keyspace

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidArgument means an argument was refused before anything was
// sent: a wrong placeholder value, an empty name, a bad setting. The
// runtime's ErrInvalidArgument is this same value.
var ErrInvalidArgument = errors.New("invalid argument")

// The defaults of an at-least-once queue's settings, used by the runtime
// when a declaration leaves a setting zero and by the generator when the
// schema leaves it out.
const (
	DefaultLease         = 30 * time.Second
	DefaultMaxDeliveries = 5
	DefaultDedupeWindow  = time.Hour
)

// Part is one Redis key of a queue or a cache: the entry's key followed by
// Suffix. Its Name is how code and scripts refer to it: the Lua scripts of
// an at-least-once queue bind KEYS[i] to a local named Name in upper case.
type Part struct {
	Name   string // "ready", "processing", …
	Suffix string // after the entry's key: "", ":processing", …
	Type   string // the Redis type: LIST, ZSET, HASH or STRING
	Holds  string // what the key holds
}

// QueueParts are the keys of an at-most-once queue.
var QueueParts = [...]Part{
	{"queue", "", "LIST", "the payloads: LPUSH at the head, popped from the tail"},
	{"dead", ":dead", "LIST", "items of that queue that could not be decoded"},
}

// CacheParts are the keys of a cache entry.
var CacheParts = [...]Part{
	{"entry", "", "STRING", "a cache entry, SET with PX when it expires"},
}

// The indexes of ReliableParts, which are also the order in which every
// script of an at-least-once queue receives its keys: KEYS[Ready+1] is the
// ready list, and so on.
const (
	Ready = iota
	Processing
	Leases
	Delayed
	Dead
	Items
	Attempts
	Errors
	ReadyAt
	NumReliableParts
)

// ReliableParts are the keys of an at-least-once queue, indexed by Ready,
// Processing, …: IDs in its lists and sorted sets, the items in hashes
// beside them.
var ReliableParts = [NumReliableParts]Part{
	Ready:      {"ready", "", "LIST", "IDs ready to be received (LPUSH at the head, taken from the tail)"},
	Processing: {"processing", ":processing", "LIST", "IDs that BLMOVE moved for a waiting receiver and nobody has leased yet"},
	Leases:     {"leases", ":leases", "ZSET", "ID → end of its lease, in ms of the server's clock: the IDs received and not yet acked or nacked"},
	Delayed:    {"delayed", ":delayed", "ZSET", "ID → when a nacked item is ready again"},
	Dead:       {"dead", ":dead", "ZSET", "ID → when it became a dead letter"},
	Items:      {"items", ":items", "HASH", "ID → payload (JSON)"},
	Attempts:   {"attempts", ":attempts", "HASH", "ID → deliveries so far"},
	Errors:     {"errors", ":errors", "HASH", "ID → last error"},
	ReadyAt:    {"ready_at", ":ready_at", "HASH", "ID → when it entered the ready list, in ms of the server's clock, while it is there (for the oldest-ready age)"},
}

// PausedPart is the key that pauses an at-least-once queue (each shard
// of a sharded one has its own): while it exists, the receive script
// leases nothing, so receivers wait; pushes, acks, nacks and reclaims go
// on. Pause sets it and Resume deletes it; it has no expiry. Only the
// receive and stats scripts take it, after the queue's keys and the
// receive script's receipt, so ReliableParts, the order every script
// takes the queue's keys in, does not list it.
var PausedPart = Part{"paused", ":paused", "STRING", "exists while the queue is paused (Pause sets it, Resume deletes it): receivers lease nothing"}

// PausedKey returns the key that pauses the at-least-once queue (or
// shard) at queueKey.
func PausedKey(queueKey string) string { return queueKey + PausedPart.Suffix }

// MetaPart is the hash, beside an at-least-once queue's items (each
// shard of a sharded one has its own), that carries what a push call knew
// of an item besides its payload: ID → "<push time> [<traceparent>
// [<tracestate>]]", the push time in ms of the server's clock and the W3C
// trace context of the push's span. A Go pusher whose DataStore has a
// MeterProvider or a TracerProvider writes it; others write none. It is
// kept while the item is (nack, requeue and dead letters keep it), deleted
// with the item (ack, purge), and fields whose item is gone are swept by
// the reclaim script. Only the push, receive, ack, purge and reclaim
// scripts take it, after the keys they take already, so ReliableParts
// does not list it.
var MetaPart = Part{"meta", ":meta", "HASH", "ID → push time (ms of the server's clock) and the push's trace context, written only by pushers with an OpenTelemetry provider"}

// MetaKey returns the key of the meta hash of the at-least-once queue (or
// shard) at queueKey.
func MetaKey(queueKey string) string { return queueKey + MetaPart.Suffix }

// MarkerPart is the key, one per push call (named by the call's first ID:
// the one ID of a PushID, the first new random ID of a PushMany), that an
// at-least-once queue keeps for its dedupe window; the ID in its suffix is
// escaped like a placeholder value.
var MarkerPart = Part{"marker", ":id:<ID>", "STRING", "marks a push call by its first ID for the dedupe window (PX)"}

// markerInfix comes between the queue key and the ID in a marker key.
const markerInfix = ":id:"

// ReceiptPart is the key, one per take (one run of the receive script,
// which leases up to 100 items) that leased something or was given up,
// that an at-least-once queue keeps for the lease and go-redis's retry
// window (PX), or until the last of its deliveries is acked or nacked, so
// that the receive script that go-redis sends again after losing its
// reply hands out the same deliveries instead of leasing, and counting,
// others, and so that a take the caller gave up on can be undone.
var ReceiptPart = Part{"receipt", ":rx:<token>", "STRING", "the deliveries one take leased (ID, attempt and ready time of each), or released, for the lease and the retry window (PX) or until its last delivery is settled"}

// receiptInfix comes between the queue key and the token in a receipt key.
const receiptInfix = ":rx:"

// QueueKey returns the key of the queue called name under prefix:
// <prefix>queue:{<name>}. The braces are a Redis Cluster hash tag, so every
// key of one queue (the parts above are all suffixes of this key) hashes to
// the same slot and one Lua script may touch them all. Names never contain
// raw braces (values are escaped, literal text may not have them), so the
// tag is always exactly the name.
func QueueKey(prefix, name string) string { return prefix + "queue:{" + name + "}" }

// DeadKey returns the key of the dead letters of the queue at queueKey, of
// either kind.
func DeadKey(queueKey string) string { return queueKey + QueueParts[1].Suffix }

// CacheKey returns the key of the cache entry called name under prefix:
// <prefix>cache:<name>.
func CacheKey(prefix, name string) string { return prefix + "cache:" + name }

// ReliableKeys returns the keys of the at-least-once queue at queueKey,
// indexed by Ready, Processing, ….
func ReliableKeys(queueKey string) []string {
	keys := make([]string, NumReliableParts)
	for i, p := range ReliableParts {
		keys[i] = queueKey + p.Suffix
	}
	return keys
}

// MarkerKey returns the key that records that id was pushed to the
// at-least-once queue at queueKey. The ID is escaped like a placeholder
// value, so it cannot bring braces into the key either.
func MarkerKey(queueKey, id string) string { return suffixKey(queueKey, markerInfix, id) }

// ReceiptKey returns the key of the receipt of the take with token on
// the at-least-once queue at queueKey. The token is escaped like an ID.
func ReceiptKey(queueKey, token string) string { return suffixKey(queueKey, receiptInfix, token) }

// suffixKey returns queueKey, infix and s, with s escaped like a
// placeholder value.
func suffixKey(queueKey, infix, s string) string {
	var b strings.Builder
	b.Grow(len(queueKey) + len(infix) + len(s))
	b.WriteString(queueKey)
	b.WriteString(infix)
	for i := 0; i < len(s); i++ {
		if c := s[i]; AlwaysEscaped(c) {
			writeEscaped(&b, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// CheckPrefix reports whether prefix can start every key: it may not
// contain spaces, % { } * ? [ ] \ or control bytes, which would break
// hash tags, glob patterns or the escaping of key values.
func CheckPrefix(prefix string) error {
	for i := 0; i < len(prefix); i++ {
		if AlwaysEscaped(prefix[i]) || prefix[i] == ' ' {
			return fmt.Errorf("has %q at offset %d; a prefix may not contain spaces, %% { } * ? [ ] \\ or control bytes", prefix[i], i)
		}
	}
	return nil
}

// CheckName reports whether a name given to the untyped queue or cache API
// is usable as a key part: not empty, and without the bytes that would
// break a hash tag or a glob pattern. '%' is allowed, so that escaped names
// that a Pattern expands to can be addressed too.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '%' && AlwaysEscaped(name[i]) {
			return fmt.Errorf("%w: name has byte %q at offset %d; names may not contain { } * ? [ ] \\ or control bytes", ErrInvalidArgument, name[i], i)
		}
	}
	return nil
}
