#!lua flags=allow-oom
-- extend: renews the leases of the items held by a batch of deliveries.
--
-- Flags: allow-oom. It changes the ends of leases that exist, which takes
-- no memory, so handlers keep their leases when memory is full.
--
-- KEYS[3] LEASES    -> <Q>:leases, ID -> lease end
-- KEYS[7] ATTEMPTS  -> <Q>:attempts, read by holds
-- ARGV[1] -> the new lease in ms, from now by the server's clock
-- ARGV[2i], ARGV[2i+1] -> the ID and the attempt number of delivery i
--                         (Delivery.ID, Delivery.Attempt), i = 1, 2, ...
--
-- Returns one number per delivery, in order:
--   1  the lease ends ARGV[1] ms from now
--   0  the delivery no longer holds the item
local ids, attempts = {}, {}
for i = 2, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  attempts[#attempts + 1] = ARGV[i + 1]
end
if #ids == 0 then return {} end
local counts = redis.call('HMGET', ATTEMPTS, unpack(ids))
local leased = redis.call('ZMSCORE', LEASES, unpack(ids))
local leaseEnd = now + tonumber(ARGV[1])
local out, leases = {}, {}
for i, id in ipairs(ids) do
  if counts[i] == attempts[i] and leased[i] then
    out[i] = 1
    leases[#leases + 1] = leaseEnd
    leases[#leases + 1] = id
  else
    out[i] = 0
  end
end
callWith('ZADD', LEASES, leases)
return out
