package keyspace

import (
	"hash/fnv"
	"strconv"
)

// MaxShards is the most shards a queue may have (the schema's shards key).
const MaxShards = 1024

// ShardKey returns the key of shard i of the queue called name under
// prefix. Shard 0 is the queue's own key, QueueKey(prefix, name), so that a
// queue that grows from one shard to more keeps every item where it is.
// Shard i > 0 is <prefix>queue:<i>:{<name>#<i>}: its hash tag differs from
// every other shard's, so the shards spread over a cluster's slots, and the
// text before the tag (queue:<i>: rather than queue:{) keeps it apart from
// the key of every queue, sharded or not, whatever names hold ('#' may be
// in a name; a digit never follows "queue:" in a queue's own key). Every
// other key of the shard (its dead letters, the keys of an at-least-once
// queue, markers and receipts) is this key followed by its suffix, as for
// an unsharded queue.
func ShardKey(prefix, name string, i int) string {
	if i == 0 {
		return QueueKey(prefix, name)
	}
	return shardKey(prefix, name, strconv.Itoa(i))
}

// ShardKeyTemplate is the key of shard i > 0 with <i> for the number, as
// documentation shows it.
func ShardKeyTemplate(prefix, name string) string { return shardKey(prefix, name, "<i>") }

func shardKey(prefix, name, i string) string {
	return prefix + "queue:" + i + ":{" + name + "#" + i + "}"
}

// ShardKeys returns the keys of the n shards of the queue called name
// under prefix, shard 0 first.
func ShardKeys(prefix, name string, n int) []string {
	keys := make([]string, max(n, 1))
	for i := range keys {
		keys[i] = ShardKey(prefix, name, i)
	}
	return keys
}

// ShardOf returns the shard, of n, of the at-least-once item with id:
// FNV-1a (32 bits) of the ID modulo n. It is a function of the ID alone,
// so a push retried with the same ID goes to the same shard, where its
// dedupe marker and the item are. It is part of the key layout: changing
// it would strand the dedupe of IDs pushed before.
func ShardOf(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}
