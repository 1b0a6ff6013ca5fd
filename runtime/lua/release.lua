#!lua flags=allow-oom
-- release: puts back an item that BLMOVE moved to PROCESSING but that was
-- never leased (the receiver's context ended in between), at the tail of
-- READY, where it was, without counting a delivery.
--
-- Flags: allow-oom. It moves one ID back to READY, where it was, so it
-- takes no memory the item did not hold before.
--
-- KEYS[1] READY       -> <Q>, gets the ID back at its tail
-- KEYS[2] PROCESSING  -> <Q>:processing, the ID leaves it
-- KEYS[3] LEASES      -> <Q>:leases, a lease means a reclaim claimed it first
-- KEYS[9] READY_AT    -> <Q>:ready_at, keeps the time it first became ready
-- ARGV[1] -> the ID BLMOVE moved
--
-- Returns:
--   1  the item is ready again
--   0  nothing to release (a reclaim leased it in the meantime)
local id = ARGV[1]
if redis.call('ZSCORE', LEASES, id) ~= false or redis.call('LREM', PROCESSING, 1, id) == 0 then return 0 end
redis.call('HSETNX', READY_AT, id, now)
local since = tonumber(redis.call('HGET', READY_AT, id))
-- READY stays in order of READY_AT from its tail: items released a moment
-- ago that became ready before this one stay behind it. There are as many
-- as there were receivers releasing at once; 100 bounds the walk.
local aside = {}
while #aside < 100 do
  local tail = redis.call('LINDEX', READY, -1)
  if not tail then break end
  local at = tonumber(redis.call('HGET', READY_AT, tail) or '')
  if not at or at >= since then break end
  aside[#aside + 1] = redis.call('RPOP', READY)
end
redis.call('RPUSH', READY, id)
for i = #aside, 1, -1 do
  redis.call('RPUSH', READY, aside[i])
end
return 1
