#!lua flags=allow-oom
-- purge: deletes the oldest dead letters for good.
--
-- Flags: allow-oom. It only deletes, so it runs when the server's memory
-- is full (maxmemory with noeviction), to make room.
--
-- KEYS[5] DEAD      -> <Q>:dead, oldest first
-- KEYS[6] ITEMS     -> <Q>:items, payloads deleted
-- KEYS[7] ATTEMPTS  -> <Q>:attempts, counts deleted
-- KEYS[8] ERRORS    -> <Q>:errors, last errors deleted
-- KEYS[9] READY_AT  -> <Q>:ready_at, cleared in case a stale time is left
-- KEYS[10] META    -> <Q>:meta, push times and trace contexts deleted
-- ARGV[1] -> at most this many
--
-- Returns: how many it deleted.
local META = KEYS[10]
local ids = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', DEAD, id)
  redis.call('HDEL', ITEMS, id)
  redis.call('HDEL', ATTEMPTS, id)
  redis.call('HDEL', ERRORS, id)
  redis.call('HDEL', READY_AT, id)
  redis.pcall('HDEL', META, id) -- optional: a key of another type fails nothing
end
return #ids
