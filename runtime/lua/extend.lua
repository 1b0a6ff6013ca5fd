#!lua flags=allow-oom
-- extend: renews the lease of the item held by a delivery.
--
-- Flags: allow-oom. It changes the end of a lease that exists, which takes
-- no memory, so handlers keep their leases when memory is full.
--
-- KEYS[3] LEASES    -> <Q>:leases, ID -> lease end
-- KEYS[7] ATTEMPTS  -> <Q>:attempts, read by holds
-- ARGV[1] -> the item's ID (Go's hold prepends it: Delivery.ID)
-- ARGV[2] -> the delivery's attempt number (Go's hold prepends it: Delivery.Attempt)
-- ARGV[3] -> the new lease in ms, from now by the server's clock
--
-- Returns:
--   1  the lease ends ARGV[3] ms from now
--   0  the delivery no longer holds the item
if not holds(ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', LEASES, now + tonumber(ARGV[3]), ARGV[1])
return 1
