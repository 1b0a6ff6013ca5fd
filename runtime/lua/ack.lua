#!lua flags=allow-oom
-- ack: removes the item held by a delivery for good.
--
-- Flags: allow-oom. It only deletes, so it runs when the server's memory
-- is full (maxmemory with noeviction): that is how consumers drain a full
-- server.
--
-- KEYS[2] PROCESSING  -> <Q>:processing, the ID leaves it
-- KEYS[3] LEASES      -> <Q>:leases, the lease is dropped (holds reads it)
-- KEYS[6] ITEMS       -> <Q>:items, the payload is deleted
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, the count is deleted (holds reads it)
-- KEYS[8] ERRORS      -> <Q>:errors, the last error is deleted
-- KEYS[9] READY_AT    -> <Q>:ready_at, cleared in case a stale time is left
-- KEYS[10] RECEIPT    -> <Q>:rx:<token>, the receipt of the Receive call that
--                        leased this delivery: deleted, it is no longer needed
-- ARGV[1] -> the item's ID (Go's hold prepends it: Delivery.ID)
-- ARGV[2] -> the delivery's attempt number (Go's hold prepends it: Delivery.Attempt)
--
-- Returns:
--   1  the item is removed; also when it was gone already (an ack that
--      go-redis sent again after losing the reply, or one that another
--      delivery beat)
--   0  the item is there but the delivery no longer holds it
local RECEIPT = KEYS[10]
local id = ARGV[1]
if redis.call('HEXISTS', ITEMS, id) == 0 then return 1 end
if not holds(id, ARGV[2]) then return 0 end
redis.call('DEL', RECEIPT)
redis.call('ZREM', LEASES, id)
redis.call('LREM', PROCESSING, 1, id)
redis.call('HDEL', ITEMS, id)
redis.call('HDEL', ATTEMPTS, id)
redis.call('HDEL', ERRORS, id)
redis.call('HDEL', READY_AT, id)
return 1
