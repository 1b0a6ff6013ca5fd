#!lua flags=allow-oom
-- reclaim: up to ARGV[3] items of each kind: items whose lease ran out go
-- back to READY, or to the dead letters once they have had ARGV[2]
-- deliveries; delayed items that are due become ready; and IDs left in
-- PROCESSING (a consumer stopped between BLMOVE and its lease) move to
-- LEASES with a lease of ARGV[1] ms, so that they come back if nobody
-- claims them.
--
-- Flags: allow-oom. It moves IDs that are stored already and writes a
-- short error (tens of bytes) per expired lease: bounded by the items that
-- exist, never a payload. Expired items come back when memory is full too.
--
-- KEYS[1] READY       -> <Q>, where expired and due items go
-- KEYS[2] PROCESSING  -> <Q>:processing, IDs BLMOVE moved and nobody leased
-- KEYS[3] LEASES      -> <Q>:leases, read for expired leases
-- KEYS[4] DELAYED     -> <Q>:delayed, read for due items
-- KEYS[5] DEAD        -> <Q>:dead, for items out of deliveries
-- KEYS[6] ITEMS       -> <Q>:items, an ID in PROCESSING without one is foreign
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, ID -> deliveries so far
-- KEYS[8] ERRORS      -> <Q>:errors, gets "lease ran out during delivery N"
-- KEYS[9] READY_AT    -> <Q>:ready_at, for items made ready
-- KEYS[10] META      -> <Q>:meta, a random sample of its fields is swept
--                        of those whose item is gone (an ack or purge by
--                        a process whose scripts predate META)
-- ARGV[1] -> the lease in ms, for IDs in PROCESSING
-- ARGV[2] -> the queue's max deliveries
-- ARGV[3] -> at most this many items of each kind
-- ARGV[4] -> at most this many fields of META are looked at (0: none)
--
-- Returns: {requeued, dead, promoted}: expired leases put back, expired
-- leases made dead letters, delayed items made ready.
local META = KEYS[10]
local limit = tonumber(ARGV[3])
local requeued, dead = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', LEASES, id)
  -- A queue written before leased IDs left PROCESSING may still list it.
  redis.call('LREM', PROCESSING, 1, id)
  local n = tonumber(redis.call('HGET', ATTEMPTS, id) or '0')
  redis.call('HSET', ERRORS, id, 'lease ran out during delivery ' .. n)
  if n >= tonumber(ARGV[2]) then
    redis.call('ZADD', DEAD, now, id)
    dead = dead + 1
  else
    makeReady(id)
    requeued = requeued + 1
  end
end
local promoted = promoteDue(limit)
for _, id in ipairs(redis.call('LRANGE', PROCESSING, -limit, -1)) do
  redis.call('LREM', PROCESSING, 1, id)
  -- An ID with a lease is leased already (a queue written before leased
  -- IDs left PROCESSING listed it in both). One without a payload was not
  -- pushed by a reliable queue: it goes back to READY, where the receive
  -- script keeps it as a dead letter.
  if redis.call('HEXISTS', ITEMS, id) == 0 then
    makeReady(id)
  elseif redis.call('ZSCORE', LEASES, id) == false then
    redis.call('ZADD', LEASES, now + tonumber(ARGV[1]), id)
  end
end
-- Sweep: a random sample of META's fields (HRANDFIELD, distinct fields),
-- those whose item is no longer in ITEMS are deleted. redis.pcall: an ACL
-- user set up before the sweep existed (no +hrandfield) skips it rather
-- than failing the reclaim, and with it every receive.
local sample = tonumber(ARGV[4] or '0')
if sample > 0 then
  local fields = redis.pcall('HRANDFIELD', META, sample)
  if type(fields) == 'table' and not fields.err then
    local gone = {}
    for _, id in ipairs(fields) do
      if redis.call('HEXISTS', ITEMS, id) == 0 then gone[#gone + 1] = id end
    end
    callWith('HDEL', META, gone)
  end
end
return {requeued, dead, promoted}
