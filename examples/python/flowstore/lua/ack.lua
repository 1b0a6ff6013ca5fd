#!lua flags=allow-oom
-- ack: removes, for good, the items held by a batch of deliveries.
--
-- Flags: allow-oom. It only deletes, so it runs when the server's memory
-- is full (maxmemory with noeviction): that is how consumers drain a full
-- server.
--
-- KEYS[2] PROCESSING  -> <Q>:processing, cleared of the IDs (see below)
-- KEYS[3] LEASES      -> <Q>:leases, the lease is dropped (holds reads it)
-- KEYS[6] ITEMS       -> <Q>:items, the payload is deleted
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, the count is deleted (holds reads it)
-- KEYS[8] ERRORS      -> <Q>:errors, the last error is deleted
-- KEYS[9] READY_AT    -> <Q>:ready_at, cleared in case a stale time is left
-- KEYS[10] META      -> <Q>:meta, the item's push time and trace context are deleted
-- KEYS[11], ...       -> <Q>:rx:<token>, receipts of takes none of whose
--                        deliveries is out any more (Go counts them):
--                        deleted, they are no longer needed
-- ARGV[2i-1] -> the ID of delivery i (Delivery.ID), i = 1, 2, ...
-- ARGV[2i]   -> its attempt number (Delivery.Attempt)
--
-- Returns one number per delivery, in order:
--   1  the item is removed
--   2  the item was gone already (an ack that go-redis sent again after
--      losing the reply, or one that another delivery beat): nothing to do,
--      and not an error either; the end-to-end time is recorded on 1 only
--   0  the item is there but the delivery no longer holds it
local META = KEYS[10]
for i = 11, #KEYS do redis.call('DEL', KEYS[i]) end
local ids, attempts = {}, {}
for i = 1, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  attempts[#attempts + 1] = ARGV[i + 1]
end
if #ids == 0 then return {} end
-- holds, for the batch: the count is the delivery's (one command for
-- all), and the item has a lease, which ZREM both tells and drops.
local counts = redis.call('HMGET', ATTEMPTS, unpack(ids))
local out, done = {}, {}
for i, id in ipairs(ids) do
  if counts[i] == attempts[i] and redis.call('ZREM', LEASES, id) == 1 then
    out[i] = 1
    done[#done + 1] = id
  elseif redis.call('HEXISTS', ITEMS, id) == 0 then
    out[i] = 2
  else
    out[i] = 0
  end
end
-- A queue written before leased IDs left PROCESSING may still list them.
if #done > 0 and redis.call('LLEN', PROCESSING) > 0 then
  for _, id in ipairs(done) do redis.call('LREM', PROCESSING, -1, id) end
end
callWith('HDEL', ITEMS, done)
callWith('HDEL', ATTEMPTS, done)
callWith('HDEL', ERRORS, done)
callWith('HDEL', READY_AT, done)
metaWith('HDEL', META, done)
return out
