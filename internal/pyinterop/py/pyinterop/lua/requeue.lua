#!lua flags=allow-oom
-- requeue: moves the oldest dead letters back to READY with their delivery
-- count and last error reset.
--
-- Flags: allow-oom. It moves dead IDs back to READY and deletes their
-- counts and errors, so it takes no more memory than it frees.
--
-- KEYS[1] READY     -> <Q>, where they go
-- KEYS[5] DEAD      -> <Q>:dead, oldest first
-- KEYS[7] ATTEMPTS  -> <Q>:attempts, reset
-- KEYS[8] ERRORS    -> <Q>:errors, reset
-- KEYS[9] READY_AT  -> <Q>:ready_at, for items made ready
-- ARGV[1] -> at most this many
--
-- Returns: how many it moved.
local ids = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', DEAD, id)
  redis.call('HDEL', ATTEMPTS, id)
  redis.call('HDEL', ERRORS, id)
  makeReady(id)
end
return #ids
