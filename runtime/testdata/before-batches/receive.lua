-- The prelude of every script: those of an at-least-once queue, and
-- deadletter.lua, which an at-most-once queue uses with the same keys.
-- scripts.go puts it between a script's #!lua line and the script's own
-- text, so every script sees these names.
--
-- Every script receives the queue's keys in this order (keyspace.Ready …
-- keyspace.ReadyAt in Go; TestScriptKeyNames ties the two), all under the
-- queue's hash tag, so no script needs to say KEYS[n]:
local READY, PROCESSING, LEASES, DELAYED, DEAD, ITEMS, ATTEMPTS, ERRORS, READY_AT =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
-- READY       LIST  IDs ready to be received: pushed at the head, taken from the tail
-- PROCESSING  LIST  IDs received and not yet acked or nacked
-- LEASES      ZSET  ID -> end of its lease, ms of server time
-- DELAYED     ZSET  ID -> when a nacked item is ready again, ms of server time
-- DEAD        ZSET  ID -> when it became a dead letter, ms of server time
-- ITEMS       HASH  ID -> payload
-- ATTEMPTS    HASH  ID -> deliveries so far
-- ERRORS      HASH  ID -> last error
-- READY_AT    HASH  ID -> when it entered READY, ms of server time (for Stats)

-- now is the server's clock in ms: lease ends, due times and ready times
-- never come from a client's clock, which may be off.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- holds reports whether delivery attempt (a string, as ARGV carries it)
-- still holds the item id: the item's delivery count is still attempt,
-- and it has a lease (even an expired one that nobody has reclaimed yet).
local function holds(id, attempt)
  return redis.call('HGET', ATTEMPTS, id) == attempt and redis.call('ZSCORE', LEASES, id) ~= false
end

-- delivered reports whether a receive script leased id (and it is still
-- out): it has a lease and no ready time, which the receive script
-- deletes as it leases. An ID that BLMOVE moved keeps its ready time,
-- also after a reclaim gave it a lease because nobody leased it (an
-- orphan), so it is not delivered.
local function delivered(id)
  return redis.call('ZSCORE', LEASES, id) ~= false and redis.call('HEXISTS', READY_AT, id) == 0
end

-- makeReady puts id at the head of READY, to be received after every item
-- already there, and records when it became ready. READY_AT grows in the
-- same order as READY, so the tail of READY is always the oldest item.
local function makeReady(id)
  redis.call('LPUSH', READY, id)
  redis.call('HSET', READY_AT, id, now)
end

-- promoteDue makes up to limit delayed items that are due ready and
-- returns how many.
local function promoteDue(limit)
  local ids = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', DELAYED, id)
    makeReady(id)
  end
  return #ids
end

-- nextDue returns the ms until the earliest delayed item is due (0 when
-- it is due already), or -1 when nothing is delayed.
local function nextDue()
  local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return math.max(tonumber(first[2]) - now, 0)
end
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
