package keyspace

import (
	"fmt"
	"strconv"
)

// Layout is how a declaration's placeholder values become its keys.
//
// Tagged, the default, escapes every string value (see Pattern) and puts a
// queue's expansion between braces, a Redis Cluster hash tag, so that two
// argument tuples never share a key and every key of one queue is in one
// cluster slot.
//
// Plain inserts the values as they are, which is what the engine's Python
// storage system writes: <prefix>queue:<expansion> for a queue (its QueueStore)
// and <prefix>cache:<expansion> for a cache entry (its CacheStore). It gives
// up what Tagged promises: two tuples can give one key (queue_{a}_{b} with
// ("a_b", "c") and ("a", "b_c")), and a plain queue's keys have no common
// hash tag (its dead-letter list is in another slot than the queue), so
// only at-most-once, unsharded queues and caches may be plain.
type Layout int

// The layouts of a declaration's keys.
const (
	Tagged Layout = iota // escaped values; a queue's keys share a hash tag (the default)
	Plain                // values as they are, as the Python storage system writes them
)

// String returns the layout as a schema writes it: tagged or plain.
func (l Layout) String() string {
	switch l {
	case Tagged:
		return "tagged"
	case Plain:
		return "plain"
	}
	return "Layout(" + strconv.Itoa(int(l)) + ")"
}

// ParseLayout returns the layout a schema names: tagged or plain.
func ParseLayout(s string) (Layout, bool) {
	switch s {
	case "tagged":
		return Tagged, true
	case "plain":
		return Plain, true
	}
	return Tagged, false
}

// CheckLayout reports a Layout that is neither Tagged nor Plain.
func CheckLayout(l Layout) error {
	if l != Tagged && l != Plain {
		return fmt.Errorf("%w: unknown layout %d", ErrInvalidArgument, int(l))
	}
	return nil
}

// PlainQueueKey returns the key of the plain queue whose pattern expands to
// name under prefix: <prefix>queue:<name>, without braces. Its dead-letter
// list is DeadKey of it, as for a tagged queue.
func PlainQueueKey(prefix, name string) string { return prefix + "queue:" + name }

// QueueKeyOf returns the key of the queue whose pattern expands to name
// under prefix in layout l: QueueKey or PlainQueueKey.
func QueueKeyOf(l Layout, prefix, name string) string {
	if l == Plain {
		return PlainQueueKey(prefix, name)
	}
	return QueueKey(prefix, name)
}

// CheckPlainValue reports a string value that a plain key may not hold:
// an empty one, or one with a control byte (0x00-0x1f, 0x7f), which would
// make the key unusable in redis-cli, logs and the Python system alike.
// Every other byte is inserted as it is, the pattern's separators, '%',
// braces (which then make a hash tag) and glob characters included.
func CheckPlainValue(v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty value", ErrInvalidArgument)
	}
	for i := 0; i < len(v); i++ {
		if plainRefused(v[i]) {
			return fmt.Errorf("%w: value has control byte %q at offset %d; a plain key may not hold control bytes", ErrInvalidArgument, v[i], i)
		}
	}
	return nil
}

// plainRefused reports the bytes that a plain value may not hold.
func plainRefused(c byte) bool { return c < 0x20 || c == 0x7f }

// ExpandLayout is Expand for Tagged and ExpandPlain for Plain.
func (p *Pattern) ExpandLayout(l Layout, args ...any) (string, error) {
	switch l {
	case Tagged:
		return p.Expand(args...)
	case Plain:
		return p.ExpandPlain(args...)
	}
	return "", CheckLayout(l)
}

// ExpandPlain fills in the placeholders with args as the plain layout does:
// the pattern's literal text with each string value inserted as it is and
// each int written in decimal (strconv.Itoa, as Python's str(int) writes
// it). A value CheckPlainValue refuses is an error.
func (p *Pattern) ExpandPlain(args ...any) (string, error) { return p.expand(Plain, args) }
