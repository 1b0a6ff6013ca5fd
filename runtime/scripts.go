package runtime

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts of an at-least-once queue (RELIABILITY.md items 5–9, 15).
// Each step that changes where an item is (push, receive-and-lease, ack,
// nack, extend, release, reclaim, requeue, purge) is one script, so it is
// atomic on the server. Every script:
//
//   - starts with #!lua, so that Redis 7 (and any cluster) refuses a key
//     that was not declared;
//   - touches only the keys passed in KEYS: the queue's keys in the order of
//     reliableKeys (KEYS[1] ready … KEYS[8] errors), then, for push, one
//     marker key per item; all of them share the queue's hash tag;
//   - reads the time from the server (TIME), never from the client.
//
// An item's ID is in exactly one of: the ready list, the processing list
// (with or, briefly after BLMOVE, without a lease), the delayed set or the
// dead set. Its payload, delivery count and last error live in the hashes
// until it is acked or purged.
//
// A delivery holds its item while the attempts hash still has its attempt
// number and the item has a lease (even an expired one nobody has reclaimed
// yet); ack, nack and extend check both.

const luaPrelude = `#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function holds(id, attempt)
  return redis.call('HGET', KEYS[7], id) == attempt and redis.call('ZSCORE', KEYS[3], id) ~= false
end
`

// pushScript stores each (ID, payload) pair of ARGV[2…] unless the ID is
// live in the queue or its marker is still there; ARGV[1] is the dedupe
// window in ms. It returns how many it stored.
var pushScript = newScript("push", `
local stored = 0
for i = 1, (#ARGV - 1) / 2 do
  local id, payload = ARGV[2 * i], ARGV[2 * i + 1]
  if redis.call('HEXISTS', KEYS[6], id) == 0 and redis.call('SET', KEYS[8 + i], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('HSET', KEYS[6], id, payload)
    redis.call('LPUSH', KEYS[1], id)
    stored = stored + 1
  end
end
return stored
`)

// receiveScript leases one item for ARGV[1] ms. With ARGV[2] empty it takes
// the oldest ready item; otherwise ARGV[2] is an ID that BLMOVE has just
// moved to processing. It returns {1, id, payload, attempt}; {2, id} when the
// entry was not pushed by a reliable queue (it is kept as a dead letter,
// under a new ID, with itself as payload); or nil when there is nothing to
// lease (an empty queue, or an ID that a reclaim put back in the meantime).
var receiveScript = newScript("receive", `
local id = ARGV[2]
if id == '' then
  id = redis.call('RPOP', KEYS[1])
  if not id then return nil end
  redis.call('LPUSH', KEYS[2], id)
elseif not redis.call('LPOS', KEYS[2], id) then
  return nil
end
local payload = redis.call('HGET', KEYS[6], id)
if not payload then
  redis.call('LREM', KEYS[2], 1, id)
  local dead = 'foreign-' .. now
  local n = 0
  while redis.call('HEXISTS', KEYS[6], dead) == 1 do
    n = n + 1
    dead = 'foreign-' .. now .. '-' .. n
  end
  redis.call('HSET', KEYS[6], dead, id)
  redis.call('HSET', KEYS[7], dead, 0)
  redis.call('HSET', KEYS[8], dead, 'entry was not pushed by a reliable queue')
  redis.call('ZADD', KEYS[5], now, dead)
  return {2, dead}
end
local attempt = redis.call('HINCRBY', KEYS[7], id, 1)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id)
return {1, id, payload, attempt}
`)

// ackScript removes the item ARGV[1] held by attempt ARGV[2] for good.
// It returns 1; 1 also when the item is gone already (an ack that go-redis
// sent again after losing the reply, or one that another delivery beat);
// 0 when the item is there but the delivery no longer holds it.
var ackScript = newScript("ack", `
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[6], id) == 0 then return 1 end
if not holds(id, ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[3], id)
redis.call('LREM', KEYS[2], 1, id)
redis.call('HDEL', KEYS[6], id)
redis.call('HDEL', KEYS[7], id)
redis.call('HDEL', KEYS[8], id)
return 1
`)

// nackScript gives back the item ARGV[1] held by attempt ARGV[2] after a
// failure ARGV[5]: ready again after ARGV[3] ms, or a dead letter when it
// has had ARGV[4] deliveries. It returns 1 (retried), 2 (dead) or 0 when
// the delivery no longer holds the item.
var nackScript = newScript("nack", `
local id = ARGV[1]
if not holds(id, ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[3], id)
redis.call('LREM', KEYS[2], 1, id)
redis.call('HSET', KEYS[8], id, ARGV[5])
if tonumber(ARGV[2]) >= tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[5], now, id)
  return 2
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  redis.call('ZADD', KEYS[4], now + delay, id)
else
  redis.call('LPUSH', KEYS[1], id)
end
return 1
`)

// extendScript sets the lease of the item ARGV[1] held by attempt ARGV[2]
// to end ARGV[3] ms from now. It returns 1, or 0 when the delivery no
// longer holds the item.
var extendScript = newScript("extend", `
if not holds(ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1
`)

// releaseScript puts the item ARGV[1], which BLMOVE moved to processing
// but which was never leased, back at the front of the ready list without
// counting a delivery. It returns 1, or 0 when there was nothing to
// release (a reclaim leased it in the meantime).
var releaseScript = newScript("release", `
local id = ARGV[1]
if redis.call('ZSCORE', KEYS[3], id) ~= false or redis.call('LREM', KEYS[2], 1, id) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], id)
return 1
`)

// reclaimScript handles up to ARGV[3] items of each kind: items whose lease
// ran out go back to the ready list, or to the dead letters once they have
// had ARGV[2] deliveries; delayed items that are due become ready; and
// items in processing without a lease (a consumer stopped between BLMOVE
// and its lease) get a lease of ARGV[1] ms, so that they come back if
// nobody claims them. It returns {requeued, dead, promoted}.
var reclaimScript = newScript("reclaim", `
local limit = tonumber(ARGV[3])
local requeued, dead, promoted = 0, 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[3], id)
  if redis.call('LREM', KEYS[2], 1, id) == 1 then
    local n = tonumber(redis.call('HGET', KEYS[7], id) or '0')
    redis.call('HSET', KEYS[8], id, 'lease ran out during delivery ' .. n)
    if n >= tonumber(ARGV[2]) then
      redis.call('ZADD', KEYS[5], now, id)
      dead = dead + 1
    else
      redis.call('LPUSH', KEYS[1], id)
      requeued = requeued + 1
    end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[4], id)
  redis.call('LPUSH', KEYS[1], id)
  promoted = promoted + 1
end
for _, id in ipairs(redis.call('LRANGE', KEYS[2], -limit, -1)) do
  if redis.call('ZSCORE', KEYS[3], id) == false then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id)
  end
end
return {requeued, dead, promoted}
`)

// requeueScript moves up to ARGV[1] of the oldest dead letters back to the
// ready list with their delivery count reset. It returns how many.
var requeueScript = newScript("requeue", `
local ids = redis.call('ZRANGE', KEYS[5], 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[5], id)
  redis.call('HDEL', KEYS[7], id)
  redis.call('HDEL', KEYS[8], id)
  redis.call('LPUSH', KEYS[1], id)
end
return #ids
`)

// purgeScript deletes up to ARGV[1] of the oldest dead letters. It returns
// how many.
var purgeScript = newScript("purge", `
local ids = redis.call('ZRANGE', KEYS[5], 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[5], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('HDEL', KEYS[7], id)
  redis.call('HDEL', KEYS[8], id)
end
return #ids
`)

// peekScript returns up to ARGV[1] of the oldest dead letters as flat
// {id, time, payload, attempts, error} groups.
var peekScript = newScript("peek", `
local out = {}
local ids = redis.call('ZRANGE', KEYS[5], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[6], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[7], id) or '0'
  out[#out + 1] = redis.call('HGET', KEYS[8], id) or ''
end
return out
`)

// script is one Lua script, in two forms: as written, with #!lua, and
// without that line, for servers that predate script shebangs (Redis
// before 7.0, and the embedded server of the demo), where it means nothing.
type script struct {
	name             string
	shebang, noFlags *redis.Script
}

func newScript(name, body string) *script {
	src := luaPrelude + body
	return &script{
		name:    name,
		shebang: redis.NewScript(src),
		noFlags: redis.NewScript(strings.TrimPrefix(src, "#!lua\n")),
	}
}

// run runs s with EVALSHA, loading it when the server does not know it.
// Once a server has refused the #!lua line, the Connection (so one
// DataStore) sends the form without it.
func (s *script) run(ctx context.Context, c *Connection, cl redis.UniversalClient, keys []string, args ...any) *redis.Cmd {
	if c.shebangRefused.Load() {
		return s.noFlags.Run(ctx, cl, keys, args...)
	}
	cmd := s.shebang.Run(ctx, cl, keys, args...)
	if err := cmd.Err(); err != nil && isShebangRefusal(err) {
		c.shebangRefused.Store(true)
		return s.noFlags.Run(ctx, cl, keys, args...)
	}
	return cmd
}

// isShebangRefusal reports the compile error of a server that reads #!lua
// as Lua: "Error compiling script … near '#'".
func isShebangRefusal(err error) bool {
	msg := err.Error()
	return isServerError(err) && strings.Contains(msg, "compiling script") && strings.Contains(msg, "'#'")
}
