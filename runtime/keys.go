package runtime

import "github.com/storagegen/storagegen/internal/keyspace"

// Every Redis key this package touches is built by internal/keyspace, which
// the generator shares: its tables (keyspace.QueueParts, ReliableParts,
// CacheParts) list each key with its Redis type. This file gives the key
// space the names that generated code and users of this package know.

// KeyPattern is a parsed key pattern such as "queue_{source_id}_{target_id}".
// Its Expand escapes every string value so that two different argument
// tuples never give the same key, and its Parse turns a key back into its
// arguments; see the README's "Keys and escaping" for the rule.
type KeyPattern = keyspace.Pattern

// Placeholder is one {name} or {name:type} of a key pattern.
type Placeholder = keyspace.Placeholder

// PlaceholderType is the Go type of a key pattern placeholder.
type PlaceholderType = keyspace.PlaceholderType

// PatternError is a syntax error in a key pattern, at a byte offset.
type PatternError = keyspace.PatternError

// The placeholder types a key pattern accepts.
const (
	String = keyspace.String // {name} or {name:string}
	Int    = keyspace.Int    // {name:int}
)

// The defaults of an at-least-once queue's settings.
const (
	DefaultLease         = keyspace.DefaultLease
	DefaultMaxDeliveries = keyspace.DefaultMaxDeliveries
	DefaultDedupeWindow  = keyspace.DefaultDedupeWindow
)

// ParseKeyPattern parses a key pattern. It returns every problem it finds,
// joined, each a *PatternError.
func ParseKeyPattern(pattern string) (*KeyPattern, error) { return keyspace.ParsePattern(pattern) }

// MustKeyPattern is ParseKeyPattern for patterns known to be valid, such as
// those in generated code; it panics on an invalid pattern.
func MustKeyPattern(pattern string) *KeyPattern {
	p, err := keyspace.ParsePattern(pattern)
	if err != nil {
		panic("storagegen: " + err.Error())
	}
	return p
}

// Layout is how a declaration's placeholder values become its keys:
// LayoutTagged (the zero value) escapes them and gives a queue's keys a
// hash tag; LayoutPlain inserts them as they are, as the engine's Python
// storage system writes its keys. See the README's "Migrating from the
// Python storage system".
type Layout = keyspace.Layout

// The layouts of a declaration's keys.
const (
	LayoutTagged = keyspace.Tagged // <prefix>queue:{<escaped expansion>}, <prefix>cache:<escaped expansion>
	LayoutPlain  = keyspace.Plain  // <prefix>queue:<expansion>, <prefix>cache:<expansion>, values as they are
)

// QueueKey returns the key of the queue called name under prefix:
// <prefix>queue:{<name>}, where the braces are a Redis Cluster hash tag
// that keeps every key of the queue in one slot.
func QueueKey(prefix, name string) string { return keyspace.QueueKey(prefix, name) }

// DeadKey returns the key of the dead letters of the queue at queueKey.
func DeadKey(queueKey string) string { return keyspace.DeadKey(queueKey) }

// CacheKey returns the key of the cache entry called name under prefix.
func CacheKey(prefix, name string) string { return keyspace.CacheKey(prefix, name) }

// CheckPrefix reports whether prefix can start every key: it may not
// contain spaces, % { } * ? [ ] \ or control bytes, which would break
// hash tags, glob patterns or the escaping of key values.
func CheckPrefix(prefix string) error { return keyspace.CheckPrefix(prefix) }

// The keys of an at-least-once queue, in the order every script receives
// them as KEYS.
const (
	keyReady        = keyspace.Ready
	keyProcessing   = keyspace.Processing
	keyLeases       = keyspace.Leases
	keyDelayed      = keyspace.Delayed
	keyDead         = keyspace.Dead
	keyItems        = keyspace.Items
	keyAttempts     = keyspace.Attempts
	keyErrors       = keyspace.Errors
	keyReadyAt      = keyspace.ReadyAt
	numReliableKeys = keyspace.NumReliableParts
)

// reliableKeys returns the keys of the at-least-once queue at queueKey,
// indexed by the key* constants (keyspace.Ready …).
func reliableKeys(queueKey string) []string { return keyspace.ReliableKeys(queueKey) }

// markerKey returns the key that records that id was pushed to the
// at-least-once queue at queueKey.
func markerKey(queueKey, id string) string { return keyspace.MarkerKey(queueKey, id) }

// receiptKey returns the key of the receipt of the take with token on
// the at-least-once queue at queueKey.
func receiptKey(queueKey, token string) string { return keyspace.ReceiptKey(queueKey, token) }

// checkName reports whether a name given to the untyped QueueStore or
// CacheStore is usable as a key part.
func checkName(name string) error { return keyspace.CheckName(name) }

// pausedKey returns the key that pauses the at-least-once queue (or
// shard) at queueKey.
func pausedKey(queueKey string) string { return keyspace.PausedKey(queueKey) }

// metaKey returns the key of the meta hash of the at-least-once queue (or
// shard) at queueKey: push times and trace contexts beside its items.
func metaKey(queueKey string) string { return keyspace.MetaKey(queueKey) }
