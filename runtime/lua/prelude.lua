-- The prelude of every script: those of an at-least-once queue, and
-- deadletter.lua, which an at-most-once queue uses. scripts.go puts it
-- between a script's #!lua line and the script's own text, so every
-- script sees these names.
--
-- Every script of an at-least-once queue receives the queue's keys in
-- this order (keyspace.Ready … keyspace.ReadyAt in Go; TestScriptKeyNames
-- ties the two), all under the queue's hash tag, so no script needs to say
-- KEYS[n]. deadletter.lua alone takes one key of its own, the dead-letter
-- list, and binds it by a name of its own; these names are not its keys:
local READY, PROCESSING, LEASES, DELAYED, DEAD, ITEMS, ATTEMPTS, ERRORS, READY_AT =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
-- READY       LIST  IDs ready to be received: pushed at the head, taken from the tail
-- PROCESSING  LIST  IDs BLMOVE moved for a waiting receiver and no take has leased yet
-- LEASES      ZSET  ID -> end of its lease, ms of server time: the IDs received and not yet acked or nacked
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

-- callWith runs redis.call(cmd, key, ...) with the elements of args as
-- the rest of its arguments, 1000 at a time (Lua's unpack refuses a few
-- thousand; 1000 is even, so pairs stay together); nothing when args is
-- empty. The batch scripts use it for one variadic command per batch
-- instead of one command per item; it suits commands whose chunks add up
-- to the whole (HSET, HDEL, ZADD, ZREM, LPUSH: in the same order).
local function callWith(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end

-- metaWith is callWith for META (<Q>:meta), which is optional beside the
-- items: redis.pcall, so that a key of another type there (anything may
-- write to Redis) fails no script after it has changed the queue, nor
-- strands an item; the meta is then neither written nor deleted.
local function metaWith(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.pcall(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end

-- receiptEntries reads a receipt as receive.lua writes it, "<len>:<ID>
-- <attempt> <ready time>;" per item (the length keeps any byte of an ID
-- from being read as a separator), into a list of {ID, attempt, ready
-- time}, attempt and ready time as strings.
local function receiptEntries(receipt)
  local entries, pos = {}, 1
  while pos <= #receipt do
    local colon = string.find(receipt, ':', pos, true)
    if not colon then break end
    local len = tonumber(string.sub(receipt, pos, colon - 1))
    if not len then break end
    local id = string.sub(receipt, colon + 1, colon + len)
    local attempt, since, next = string.match(receipt, '^ (%d+) (%d+);()', colon + len + 1)
    if not next then break end
    entries[#entries + 1] = {id, attempt, since}
    pos = next
  end
  return entries
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
