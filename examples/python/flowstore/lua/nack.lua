#!lua flags=allow-oom
-- nack: gives back the item held by a delivery after a failure: ready
-- again at once or after a delay, or a dead letter after its last delivery.
--
-- Flags: allow-oom. It moves one ID and keeps a last error of at most
-- 1 KiB in place of the previous one: at most that much per delivery, never
-- a payload. So under a full memory (maxmemory with noeviction) a failed or
-- undecodable delivery still goes back or becomes a dead letter.
--
-- KEYS[1] READY       -> <Q>, where it goes when the delay is 0
-- KEYS[2] PROCESSING  -> <Q>:processing, cleared of the ID (see below)
-- KEYS[3] LEASES      -> <Q>:leases, the lease is dropped (holds reads it)
-- KEYS[4] DELAYED     -> <Q>:delayed, where it waits out a delay
-- KEYS[5] DEAD        -> <Q>:dead, where it goes after its last delivery
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, read by holds
-- KEYS[8] ERRORS      -> <Q>:errors, gets ARGV[5]
-- KEYS[9] READY_AT    -> <Q>:ready_at, when it becomes ready at once
-- KEYS[10] RECEIPT    -> <Q>:rx:<token>, the receipt of the take that leased
--                        this delivery, if none of its other deliveries is
--                        out any more (Go counts them): deleted
-- ARGV[1] -> the item's ID (Delivery.ID)
-- ARGV[2] -> the delivery's attempt number (Delivery.Attempt)
-- ARGV[3] -> the delay in ms; 0 makes it ready at once
-- ARGV[4] -> the queue's max deliveries: at this attempt it becomes a dead letter
-- ARGV[5] -> the failure, kept as its last error (at most 1 KiB)
--
-- Returns:
--   1  it will be delivered again
--   2  it is now a dead letter
--   0  the delivery no longer holds the item; nothing changed
local RECEIPT = KEYS[10]
local id = ARGV[1]
if not holds(id, ARGV[2]) then return 0 end
if RECEIPT then redis.call('DEL', RECEIPT) end
redis.call('ZREM', LEASES, id)
-- A queue written before leased IDs left PROCESSING may still list it.
redis.call('LREM', PROCESSING, -1, id)
redis.call('HSET', ERRORS, id, ARGV[5])
if tonumber(ARGV[2]) >= tonumber(ARGV[4]) then
  redis.call('ZADD', DEAD, now, id)
  return 2
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  -- now is truncated to the ms: one more, so it is never ready early.
  redis.call('ZADD', DELAYED, now + delay + 1, id)
else
  makeReady(id)
end
return 1
