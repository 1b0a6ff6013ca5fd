#!lua flags=no-writes
-- peek: reads the oldest dead letters without changing them.
--
-- Flags: no-writes. It only reads, so it runs on a replica and when the
-- server's memory is full.
--
-- KEYS[5] DEAD      -> <Q>:dead, ID -> when it died, oldest first
-- KEYS[6] ITEMS     -> <Q>:items, ID -> payload
-- KEYS[7] ATTEMPTS  -> <Q>:attempts, ID -> deliveries it had
-- KEYS[8] ERRORS    -> <Q>:errors, ID -> last error
-- ARGV[1] -> at most this many
--
-- Returns: flat {id, time of death in ms, payload, attempts, last error}
-- groups, oldest first; '' and '0' stand in for missing fields.
local out = {}
local ids = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', ITEMS, id) or ''
  out[#out + 1] = redis.call('HGET', ATTEMPTS, id) or '0'
  out[#out + 1] = redis.call('HGET', ERRORS, id) or ''
end
return out
