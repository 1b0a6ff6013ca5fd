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
-- KEYS[11] META     -> <Q>:meta, ID -> "<push time> [<traceparent> [<tracestate>]]";
--                      given only with ARGV[2] not '' (nothing else touches it)
-- ARGV[1]           -> the dedupe window in ms: how long the marker lives
-- ARGV[2]           -> '' to write no meta; else '+' followed by what goes
--                      after the push time in each ID's meta (the call's
--                      trace context, ' <traceparent> [<tracestate>]', or
--                      nothing): the same for every ID of the call
-- ARGV[2i+1], ARGV[2i+2] -> the ID and the payload (JSON) of pair i, i = 1, 2, ...
-- ARGV[3]           -> so the first ID, which KEYS[10] marks
--
-- Returns: how many pairs it stored (all or none).
local MARKER = KEYS[10]
local META = KEYS[11]
if #ARGV < 4 or redis.call('HEXISTS', ITEMS, ARGV[3]) == 1 or
   not redis.call('SET', MARKER, '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local items, ids, times, at = {}, {}, {}, tostring(now)
local metas, meta = {}, nil
if ARGV[2] ~= '' then meta = at .. string.sub(ARGV[2], 2) end
for k = 1, (#ARGV - 2) / 2 do
  local id = ARGV[2 * k + 1]
  items[2 * k - 1], items[2 * k] = id, ARGV[2 * k + 2]
  ids[k] = id
  times[2 * k - 1], times[2 * k] = id, at
  if meta then metas[2 * k - 1], metas[2 * k] = id, meta end
end
callWith('HSET', ITEMS, items)
-- LPUSH puts each argument at the head in turn: the first is received first.
callWith('LPUSH', READY, ids)
callWith('HSET', READY_AT, times)
metaWith('HSET', META, metas)
return #ids
