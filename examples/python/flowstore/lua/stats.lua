#!lua flags=no-writes
-- stats: counts the queue's items where they are, in one read-only call
-- (flags=no-writes: it may run on a replica or when memory is full).
--
-- KEYS[1] READY       -> <Q>, IDs ready; its tail is the oldest
-- KEYS[2] PROCESSING  -> <Q>:processing, IDs in flight that BLMOVE moved
--                        and nobody has leased yet
-- KEYS[3] LEASES      -> <Q>:leases, ID -> lease end: the leased IDs in flight
-- KEYS[4] DELAYED     -> <Q>:delayed, nacked items waiting out a delay
-- KEYS[5] DEAD        -> <Q>:dead, dead letters
-- KEYS[9] READY_AT    -> <Q>:ready_at, ID -> when it became ready
-- KEYS[10] PAUSED     -> <Q>:paused, exists while the queue is paused
--
-- Returns: {ready, in flight, of those with an expired lease, delayed,
-- dead, ms the oldest ready item has been ready (-1 when none is ready or
-- the 10 oldest entries carry no time: entries a plain LPUSH put there),
-- 1 if the queue is paused else 0}.
local PAUSED = KEYS[10]
local age = -1
local tail = redis.call('LRANGE', READY, -10, -1)
for i = #tail, 1, -1 do
  local at = redis.call('HGET', READY_AT, tail[i])
  if at then
    age = math.max(now - tonumber(at), 0)
    break
  end
end
-- An ID in PROCESSING with a lease is counted with LEASES: a queue written
-- before leased IDs left PROCESSING lists its deliveries in both. PROCESSING
-- is short (IDs between BLMOVE and their take), or, in such a queue, as
-- long as what was in flight then.
local waiting = 0
for _, id in ipairs(redis.call('LRANGE', PROCESSING, 0, -1)) do
  if not redis.call('ZSCORE', LEASES, id) then waiting = waiting + 1 end
end
return {
  redis.call('LLEN', READY),
  waiting + redis.call('ZCARD', LEASES),
  redis.call('ZCOUNT', LEASES, '-inf', now),
  redis.call('ZCARD', DELAYED),
  redis.call('ZCARD', DEAD),
  age,
  redis.call('EXISTS', PAUSED),
}
