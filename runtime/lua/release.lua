#!lua flags=allow-oom
-- release: gives back what a Receive call took but never handed to its
-- caller, at the tail of READY, where it was, without counting a delivery:
-- an item that BLMOVE moved to PROCESSING and that was never leased (the
-- receiver's context ended in between), or the delivery of a receive
-- script whose reply never reached the caller (its context ended, or the
-- server stalled past every retry), found by the call's receipt.
--
-- Flags: allow-oom. It moves one ID back to READY, where it was, so it
-- takes no memory the item did not hold before.
--
-- KEYS[1] READY       -> <Q>, gets the ID back at its tail
-- KEYS[2] PROCESSING  -> <Q>:processing, the ID leaves it
-- KEYS[3] LEASES      -> <Q>:leases, a lease means a reclaim claimed it first
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, an undone delivery is not counted
-- KEYS[9] READY_AT    -> <Q>:ready_at, keeps the time it first became ready
-- KEYS[10] RECEIPT    -> <Q>:rx:<token>, the Receive call's receipt: set if
--                        its receive script ran
-- ARGV[1] -> the ID BLMOVE moved, or '' when the call did not wait
-- ARGV[2] -> how long the receipt lives, in ms, as receive.lua sets it
--
-- Either way the receipt becomes 'released', so that the call's receive
-- script, if it is still on its way (a stalled server runs commands of
-- closed connections when it wakes, in no set order), takes nothing when
-- it arrives. Release and a late receive may thus run in either order and
-- the item is delivered once, by a later call.
--
-- Returns:
--   1  the item is ready again
--   0  nothing to release: the call took nothing, or what it took is no
--      longer where it left it (reclaimed, and perhaps delivered again)
local RECEIPT = KEYS[10]
local id = ARGV[1]
local since
local receipt = redis.call('GET', RECEIPT)
if receipt == 'released' then return 0 end
redis.call('SET', RECEIPT, 'released', 'PX', ARGV[2])
if receipt then
  local attempt, at, held = string.match(receipt, '^(%d+) (%d+) (.*)$')
  if not (holds(held, attempt) and delivered(held)) then return 0 end
  id, since = held, at
  if tonumber(attempt) <= 1 then
    redis.call('HDEL', ATTEMPTS, id)
  else
    redis.call('HINCRBY', ATTEMPTS, id, -1)
  end
  redis.call('ZREM', LEASES, id)
  redis.call('LREM', PROCESSING, 1, id)
else
  -- Only an ID that no receive script leased since BLMOVE moved it: a
  -- late release must never take back another receiver's delivery.
  if id == '' or delivered(id) or redis.call('LREM', PROCESSING, 1, id) == 0 then return 0 end
  -- A reclaim's orphan rule may have leased the ID meanwhile: that was
  -- never a delivery, so the lease goes with it.
  redis.call('ZREM', LEASES, id)
end
if since then
  redis.call('HSET', READY_AT, id, since)
else
  redis.call('HSETNX', READY_AT, id, now)
  since = redis.call('HGET', READY_AT, id)
end
since = tonumber(since)
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
