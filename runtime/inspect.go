package runtime

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// What tools see of queues and caches: the counts of Queue.Stats and
// Cache.Stats (ReliableQueue.Stats is in reliable.go), and the pause of
// an at-least-once queue.

// QueueStats is where an at-most-once queue's items are, as Queue.Stats
// reads them.
type QueueStats struct {
	Ready int64 // items waiting to be popped (what Len returns)
	Dead  int64 // undecodable items kept in the dead-letter list(s)
}

// Stats counts the queue's items and its dead letters with one pipeline
// of LLENs: one round trip (on a cluster, one per primary the lists are
// on). A sharded queue's counts are the sums over its shards.
func (q Queue[T]) Stats(ctx context.Context) (QueueStats, error) {
	if q.err != nil {
		return QueueStats{}, opError("stats", q.key, q.err)
	}
	lists := []string{q.key}
	if q.sh != nil {
		lists = q.sh.keys
	}
	keys := make([]string, 0, 2*len(lists))
	for _, k := range lists {
		keys = append(keys, k, DeadKey(k))
	}
	ns, err := q.ds.lens(ctx, "stats", q.key, keys, false)
	if err != nil {
		return QueueStats{}, err
	}
	var s QueueStats
	for i := 0; i < len(ns); i += 2 {
		s.Ready += ns[i]
		s.Dead += ns[i+1]
	}
	return s, nil
}

// MemoryUnknown is CacheStats.MemoryBytes when the server refused MEMORY
// USAGE: a user whose ACL lacks +memory|usage, or a server without the
// command.
const MemoryUnknown int64 = -1

// CacheStats is what Cache.Stats reads of one cache entry.
type CacheStats struct {
	Exists bool
	// TTL is the time the entry has left, to the millisecond; 0 when it
	// has no expiry (NoExpiry is then true) or does not exist.
	TTL      time.Duration
	NoExpiry bool // the entry exists and never expires
	// MemoryBytes is what the server says the entry takes (MEMORY
	// USAGE: the value, the key and the server's overhead for them); 0
	// when it does not exist, MemoryUnknown when the server refused the
	// command.
	MemoryBytes int64
}

// Stats reads whether the entry exists, its TTL and its memory with one
// pipeline (PTTL and MEMORY USAGE): one round trip. It reads Redis, never
// the local cache.
func (c Cache[T]) Stats(ctx context.Context) (CacheStats, error) {
	if c.err != nil {
		return CacheStats{}, opError("stats", c.key, c.err)
	}
	var s CacheStats
	err := c.ds.Connection.call("stats", c.key, func(cl redis.UniversalClient) error {
		var pttl *redis.Cmd
		var mem *redis.IntCmd
		_, _ = cl.Pipelined(ctx, func(p redis.Pipeliner) error {
			pttl = p.Do(ctx, "pttl", c.key)
			mem = p.MemoryUsage(ctx, c.key)
			return nil
		})
		ms, err := pttl.Int64()
		switch {
		case err != nil:
			return err
		case ms == -2:
			return nil
		case ms < 0:
			s.Exists, s.NoExpiry = true, true
		default:
			s.Exists, s.TTL = true, time.Duration(ms)*time.Millisecond
		}
		switch err := mem.Err(); {
		case err == nil:
			s.MemoryBytes = mem.Val()
		case errors.Is(err, redis.Nil):
			// Gone between the two commands: MEMORY USAGE of a missing key.
		case memoryRefused(err):
			s.MemoryBytes = MemoryUnknown
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return CacheStats{}, err
	}
	return s, nil
}

// memoryRefused reports a refusal of MEMORY USAGE: NOPERM (an ACL without
// +memory|usage) or an unknown command (renamed away, or a server that
// lacks it).
func memoryRefused(err error) bool {
	if !isServerError(err) {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "ERR unknown command") ||
		strings.HasPrefix(msg, "ERR unknown subcommand")
}

// Pause pauses the queue: until Resume, receivers (Receive, ReceiveMany,
// Consume, in any process and language that runs this version's receive
// script) lease nothing and wait, while pushes, acks, nacks, extends and
// reclaims go on. The state is a key of the queue (Q:paused, on each
// shard of a sharded queue), so it outlives this process and survives a
// server restart as the queue's other keys do. Pausing a paused queue
// does nothing.
func (q ReliableQueue[T]) Pause(ctx context.Context) error { return q.setPaused(ctx, "pause", true) }

// Resume ends a Pause: receivers lease items again, within about a
// second (they look again at most that often while the queue is paused).
// Resuming a queue that is not paused does nothing.
func (q ReliableQueue[T]) Resume(ctx context.Context) error {
	return q.setPaused(ctx, "resume", false)
}

// setPaused sets (on) or deletes the pause key of every shard, with one
// pipeline.
func (q ReliableQueue[T]) setPaused(ctx context.Context, op string, on bool) error {
	if q.err != nil {
		return opError(op, q.key, q.err)
	}
	keys := []string{q.r.paused}
	if q.sh != nil {
		keys = make([]string, len(q.sh.rel))
		for i, r := range q.sh.rel {
			keys[i] = r.paused
		}
	}
	return q.r.ds.Connection.call(op, q.key, func(cl redis.UniversalClient) error {
		_, err := cl.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				if on {
					p.Set(ctx, k, "1", 0)
				} else {
					p.Del(ctx, k)
				}
			}
			return nil
		})
		return err
	})
}

// Pause rechecks: a receiver of a paused queue looks again this often
// (bounded by its reclaim interval, so it reclaims as a waiting receiver
// does), and never more often than minPauseRecheck.
const (
	maxPauseRecheck = time.Second
	minPauseRecheck = 50 * time.Millisecond
)

// pauseRecheck is how long a receiver of a paused queue waits before it
// looks again.
func (r *reliable) pauseRecheck() time.Duration {
	return max(min(r.reclaimInterval(), maxPauseRecheck), minPauseRecheck)
}

// pause waits d, or until ctx ends or the DataStore closes; it returns
// the context's error in either of those cases (the caller's fail maps a
// close to ErrClosed). It holds no item and no connection's command.
func (c *Connection) pause(ctx context.Context, d time.Duration) error {
	wctx, stop := c.untilClose(ctx)
	defer stop()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wctx.Done():
		if err := ctx.Err(); err != nil {
			return err
		}
		return wctx.Err()
	case <-t.C:
		return nil
	}
}
