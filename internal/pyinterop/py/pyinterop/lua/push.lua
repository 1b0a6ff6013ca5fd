#!lua
-- push: stores the (ID, payload) pairs of one push call, unless its first
-- ID is live in the queue or was pushed within the dedupe window: so a
-- push that go-redis sends again after losing the reply is stored once,
-- and PushID, whose call has one pair, stores an ID once per window. The
-- other IDs of a call are new random ones (PushMany), which nothing else
-- can know, so the first stands for the call.
--
-- Flags: none, so not allow-oom: it stores new payloads, which is what a
-- server whose memory is full (maxmemory with noeviction) must refuse; a
-- push then fails with the server's OOM error and stores nothing.
--
-- KEYS[1] READY     -> <Q>, the stored IDs are pushed at its head
-- KEYS[6] ITEMS     -> <Q>:items, ID -> payload; an ID here is live
-- KEYS[9] READY_AT  -> <Q>:ready_at, ID -> when it became ready
-- KEYS[10] MARKER   -> <Q>:id:<first ID>, the marker of the call
-- ARGV[1]           -> the dedupe window in ms: how long the marker lives
-- ARGV[2i], ARGV[2i+1] -> the ID and the payload (JSON) of pair i, i = 1, 2, ...
-- ARGV[2]           -> so the first ID, which KEYS[10] marks
--
-- Returns: how many pairs it stored (all or none).
local MARKER = KEYS[10]
if #ARGV < 3 or redis.call('HEXISTS', ITEMS, ARGV[2]) == 1 or
   not redis.call('SET', MARKER, '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local items, ids, times, at = {}, {}, {}, tostring(now)
for k = 1, (#ARGV - 1) / 2 do
  local id = ARGV[2 * k]
  items[2 * k - 1], items[2 * k] = id, ARGV[2 * k + 1]
  ids[k] = id
  times[2 * k - 1], times[2 * k] = id, at
end
callWith('HSET', ITEMS, items)
-- LPUSH puts each argument at the head in turn: the first is received first.
callWith('LPUSH', READY, ids)
callWith('HSET', READY_AT, times)
return #ids
