#!lua
-- push: stores each (ID, payload) pair unless the ID is live in the queue
-- or was pushed within the dedupe window, so that a push that go-redis
-- sends again after losing the reply is stored once.
--
-- Flags: none, so not allow-oom: it stores new payloads, which is what a
-- server whose memory is full (maxmemory with noeviction) must refuse; a
-- push then fails with the server's OOM error and stores nothing.
--
-- KEYS[1] READY     -> <Q>, the stored IDs are pushed at its head
-- KEYS[6] ITEMS     -> <Q>:items, ID -> payload; an ID here is live
-- KEYS[9] READY_AT  -> <Q>:ready_at, ID -> when it became ready
-- KEYS[9+i]         -> <Q>:id:<ID of pair i>, the marker of the i-th ID
--                      (one per pair; the loop indexes them, the only
--                      KEYS[n] in the scripts)
-- ARGV[1]           -> the dedupe window in ms: how long a marker lives
-- ARGV[2i], ARGV[2i+1] -> the ID and the payload (JSON) of pair i, i = 1, 2, ...
--
-- Returns: how many pairs it stored.
local stored = 0
for i = 1, (#ARGV - 1) / 2 do
  local id, payload = ARGV[2 * i], ARGV[2 * i + 1]
  if redis.call('HEXISTS', ITEMS, id) == 0 and redis.call('SET', KEYS[9 + i], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('HSET', ITEMS, id, payload)
    makeReady(id)
    stored = stored + 1
  end
end
return stored
