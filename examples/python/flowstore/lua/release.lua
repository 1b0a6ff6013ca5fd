#!lua flags=allow-oom
-- release: gives back what a take of a Receive call (or of a consumer)
-- took but never handed to its caller, at the tail of READY, where it
-- was, without counting a delivery: an item that BLMOVE moved to
-- PROCESSING and that was never leased (the receiver's context ended in
-- between), or the deliveries of a receive script whose reply never
-- reached the caller (its context ended, or the server stalled past every
-- retry), found by the take's receipt.
--
-- Flags: allow-oom. It moves IDs back to READY, where they were, so it
-- takes no memory the items did not hold before.
--
-- KEYS[1] READY       -> <Q>, gets the IDs back at its tail
-- KEYS[2] PROCESSING  -> <Q>:processing, the BLMOVE'd ID leaves it
-- KEYS[3] LEASES      -> <Q>:leases, the undone leases are dropped
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, an undone delivery is not counted
-- KEYS[9] READY_AT    -> <Q>:ready_at, keeps the time each first became ready
-- KEYS[10] RECEIPT    -> <Q>:rx:<token>, the take's receipt: set if its
--                        receive script ran
-- ARGV[1] -> the ID BLMOVE moved, or '' when the call did not wait
-- ARGV[2] -> how long the receipt lives, in ms, as receive.lua sets it
--
-- Either way the receipt becomes 'released', so
-- that the take's receive script, if it is still on its way (a stalled
-- server runs commands of closed connections when it wakes, in no set
-- order), takes nothing when it arrives. Release and a late receive may
-- thus run in either order and each item is delivered once, by a later
-- call.
--
-- Returns how many items are ready again: 0 when the call took nothing,
-- or what it took is no longer where it left it (reclaimed, and perhaps
-- delivered again).
local RECEIPT = KEYS[10]
local receipt = redis.call('GET', RECEIPT)
if receipt == 'released' then return 0 end
redis.call('SET', RECEIPT, 'released', 'PX', ARGV[2])

-- putBack puts id at the tail of READY behind every item that became
-- ready before since (at most 100 are stepped over), so the queue's order
-- by ready time holds, and records since as its ready time again.
local function putBack(id, since)
  redis.call('HSET', READY_AT, id, since)
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
end

if receipt then
  -- Undo each delivery of the take that still holds its item, newest
  -- first (by ready time, then by the take's order, oldest first, which
  -- items pushed together share a ready time by): each then goes behind
  -- the ones already back, in O(1).
  local undo = {}
  for i, e in ipairs(receiptEntries(receipt)) do
    if holds(e[1], e[2]) and delivered(e[1]) then
      undo[#undo + 1] = {e[1], tonumber(e[2]), tonumber(e[3]), i}
    end
  end
  table.sort(undo, function(a, b) return a[3] > b[3] or (a[3] == b[3] and a[4] > b[4]) end)
  for _, u in ipairs(undo) do
    local held, attempt, since = u[1], u[2], u[3]
    if attempt <= 1 then
      redis.call('HDEL', ATTEMPTS, held)
    else
      redis.call('HINCRBY', ATTEMPTS, held, -1)
    end
    redis.call('ZREM', LEASES, held)
    putBack(held, since)
  end
  return #undo
end

-- Only an ID that no receive script leased since BLMOVE moved it: a late
-- release must never take back another receiver's delivery. A reclaim may
-- have leased it meanwhile as an orphan (it keeps its ready time); that
-- was never a delivery, so the lease goes with it.
local id = ARGV[1]
if id == '' or delivered(id) then return 0 end
if redis.call('LREM', PROCESSING, 1, id) == 0 and
   not (redis.call('ZSCORE', LEASES, id) and redis.call('HEXISTS', READY_AT, id) == 1) then
  return 0
end
redis.call('ZREM', LEASES, id)
redis.call('HSETNX', READY_AT, id, now)
putBack(id, tonumber(redis.call('HGET', READY_AT, id)))
return 1
