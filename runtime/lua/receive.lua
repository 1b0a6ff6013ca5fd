#!lua flags=allow-oom
-- receive: leases one item. With ARGV[2] empty it first makes due delayed
-- items ready, then takes the oldest ready item; otherwise ARGV[2] is an
-- ID that BLMOVE has just moved from READY to PROCESSING.
--
-- Flags: allow-oom. It moves one ID from READY to PROCESSING and records
-- its lease, its delivery count and the call's receipt (which lives for
-- ARGV[4] ms, until ack or nack deletes it): a bounded amount per item that is already stored,
-- never a payload. So consumers can drain a server whose memory is
-- full (maxmemory with noeviction).
--
-- KEYS[1] READY       -> <Q>, IDs ready to be received
-- KEYS[2] PROCESSING  -> <Q>:processing, where a received ID waits for its ack
-- KEYS[3] LEASES      -> <Q>:leases, ID -> lease end
-- KEYS[4] DELAYED     -> <Q>:delayed, ID -> when it is due
-- KEYS[5] DEAD        -> <Q>:dead, for an entry no reliable queue pushed
-- KEYS[6] ITEMS       -> <Q>:items, ID -> payload
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, ID -> deliveries so far
-- KEYS[8] ERRORS      -> <Q>:errors, ID -> last error
-- KEYS[9] READY_AT    -> <Q>:ready_at, ID -> when it became ready
-- KEYS[10] RECEIPT    -> <Q>:rx:<token>, the receipt of this Receive call: the
--                        attempt, ready time and ID it leased, so that the same
--                        call sent again (go-redis retries a command whose reply
--                        was lost) hands out the same delivery, with a lease
--                        from now, and counts none, and release can undo it
-- ARGV[1] -> the lease in ms
-- ARGV[2] -> '' to take the oldest ready item, or the ID that BLMOVE moved
-- ARGV[3] -> with ARGV[2] '': at most this many due delayed items are made ready
-- ARGV[4] -> how long the receipt lives, in ms: the lease plus the time
--            go-redis may take to send the call again
--
-- Returns:
--   {1, id, payload, attempt}  the item is leased for this delivery (or was,
--                              by this call's first run)
--   {2, dead id}               the entry was not pushed by a reliable queue:
--                              it is kept as a dead letter under a new ID,
--                              with itself as payload
--   {0, ms}                    nothing to lease (an empty queue, or an ID that a
--                              reclaim put back in the meantime); ms is how long
--                              until the next delayed item is due, -1 if none
--                              (always -1 with an ARGV[2] ID: the caller then
--                              goes back to waiting, which asks again)
local RECEIPT = KEYS[10]
local receipt = redis.call('GET', RECEIPT)
if receipt == 'released' then
  -- The caller gave up on this call and released it (release.lua): this
  -- run arrived late, after the release, and takes nothing.
  return {0, -1}
elseif receipt then
  -- This call ran before and its reply was lost: the same delivery again,
  -- if it still holds its item, and nothing new either way.
  local attempt, at, held = string.match(receipt, '^(%d+) (%d+) (.*)$')
  if holds(held, attempt) and delivered(held) then
    -- The lease starts again now: the caller gets the item only now.
    redis.call('ZADD', LEASES, now + tonumber(ARGV[1]), held)
    return {1, held, redis.call('HGET', ITEMS, held), tonumber(attempt)}
  end
  return {0, -1}
end
local id = ARGV[2]
if id == '' then
  promoteDue(tonumber(ARGV[3]))
  id = redis.call('RPOP', READY)
  if not id then return {0, nextDue()} end
  redis.call('LPUSH', PROCESSING, id)
elseif not redis.call('LPOS', PROCESSING, id) or delivered(id) then
  -- A reclaim put it back in the meantime, or it is already delivered to
  -- another receiver: this step came too late.
  return {0, -1}
end
local since = redis.call('HGET', READY_AT, id) or now
redis.call('HDEL', READY_AT, id)
local payload = redis.call('HGET', ITEMS, id)
if not payload then
  redis.call('LREM', PROCESSING, 1, id)
  local dead = 'foreign-' .. now
  local n = 0
  while redis.call('HEXISTS', ITEMS, dead) == 1 do
    n = n + 1
    dead = 'foreign-' .. now .. '-' .. n
  end
  redis.call('HSET', ITEMS, dead, id)
  redis.call('HSET', ATTEMPTS, dead, 0)
  redis.call('HSET', ERRORS, dead, 'entry was not pushed by a reliable queue')
  redis.call('ZADD', DEAD, now, dead)
  return {2, dead}
end
local attempt = redis.call('HINCRBY', ATTEMPTS, id, 1)
redis.call('ZADD', LEASES, now + tonumber(ARGV[1]), id)
redis.call('SET', RECEIPT, attempt .. ' ' .. since .. ' ' .. id, 'PX', ARGV[4])
return {1, id, payload, attempt}
