#!lua flags=allow-oom
-- receive: leases up to ARGV[5] items in one run. With ARGV[2] empty it
-- first makes due delayed items ready, then takes the oldest ready items;
-- otherwise ARGV[2] is an ID that BLMOVE has just moved from READY to
-- PROCESSING, leased first, and the rest come from READY.
--
-- Flags: allow-oom. It moves IDs from READY (or PROCESSING) to LEASES and
-- records their delivery counts and the take's receipt (which lives for
-- ARGV[4] ms, or until the ack or nack of the last of its deliveries): a
-- bounded amount per item that is already stored, never a payload. So
-- consumers can drain a server whose memory is full (maxmemory with
-- noeviction).
--
-- KEYS[1] READY       -> <Q>, IDs ready to be received
-- KEYS[2] PROCESSING  -> <Q>:processing, where BLMOVE put ARGV[2]
-- KEYS[3] LEASES      -> <Q>:leases, ID -> lease end: a leased ID lives here
-- KEYS[4] DELAYED     -> <Q>:delayed, ID -> when it is due
-- KEYS[5] DEAD        -> <Q>:dead, for an entry no reliable queue pushed
-- KEYS[6] ITEMS       -> <Q>:items, ID -> payload
-- KEYS[7] ATTEMPTS    -> <Q>:attempts, ID -> deliveries so far
-- KEYS[8] ERRORS      -> <Q>:errors, ID -> last error
-- KEYS[9] READY_AT    -> <Q>:ready_at, ID -> when it became ready
-- KEYS[10] RECEIPT    -> <Q>:rx:<token>, the receipt of this take: what it
--                        leased, as "<len>:<ID> <attempt> <ready time>;" per
--                        item, so that the same call sent again (go-redis
--                        retries a command whose reply was lost) hands out
--                        the same deliveries, with leases from now, and counts
--                        none, and release can undo them; 'released' once
--                        release gave the take up
-- KEYS[11] PAUSED     -> <Q>:paused, exists while the queue is paused:
--                        then the take leases nothing (a call sent again
--                        still gets the deliveries of its first run)
-- KEYS[12] META       -> <Q>:meta, ID -> push time and trace context, read;
--                        optional: without it every meta is ''
--                        (a caller that records no telemetry needs none)
-- ARGV[1] -> the lease in ms
-- ARGV[2] -> '' to take the oldest ready items, or the ID that BLMOVE moved
-- ARGV[3] -> with ARGV[2] '': at most this many due delayed items are made ready
-- ARGV[4] -> how long the receipt lives, in ms: the lease plus the time
--            go-redis may take to send the call again
-- ARGV[5] -> at most this many items are leased (1 to 100)
--
-- Returns {due, foreign, id1, payload1, attempt1, meta1, id2, ...} (without
-- KEYS[12], no meta: {due, foreign, id1, payload1, attempt1, id2, ...}): the leased
-- items in the order they were pushed (oldest first), each leased for this
-- delivery (or, for a retried call, by this call's first run);
--   due      with nothing leased and ARGV[2] '', how long until the next
--            delayed item is due in ms, -1 if none; otherwise -1
--   meta     the item's field of META, or '' when its pusher wrote none
--   foreign  the new IDs of entries that no reliable queue pushed (their
--            ID has no payload), now kept as dead letters with the entry
--            as payload
-- or {-2, {}} when the queue is paused: nothing was leased or changed,
-- not even an ID ARGV[2] names (the caller gives that back with release)
local RECEIPT = KEYS[10]
local PAUSED = KEYS[11]
local META = KEYS[12]
-- As a string once: redis.call would format the number for every item.
local leaseEnd = tostring(now + tonumber(ARGV[1]))
local receipt = redis.call('GET', RECEIPT)
if receipt == 'released' then
  -- The caller gave up on this take and released it (release.lua): this
  -- run arrived late, after the release, and takes nothing.
  return {-1, {}}
elseif receipt then
  -- This call ran before and its reply was lost: the same deliveries
  -- again, those that still hold their items, and nothing new; their
  -- leases start again now: the caller gets them only now.
  local out = {-1, {}}
  for _, e in ipairs(receiptEntries(receipt)) do
    local held, attempt = e[1], e[2]
    if holds(held, attempt) and delivered(held) then
      redis.call('ZADD', LEASES, leaseEnd, held)
      out[#out + 1] = held
      out[#out + 1] = redis.call('HGET', ITEMS, held)
      out[#out + 1] = tonumber(attempt)
      -- redis.pcall: META is optional, of another type it is ignored.
      if META then
        local meta = redis.pcall('HGET', META, held)
        out[#out + 1] = type(meta) == 'string' and meta or ''
      end
    end
  end
  return out
end
-- Paused: lease nothing. Checked after the receipt, so that a take whose
-- first run leased before the pause still hands its deliveries out.
if redis.call('EXISTS', PAUSED) == 1 then return {-2, {}} end

local n = math.min(tonumber(ARGV[5]), 100)
local ids = {}
if ARGV[2] == '' then
  promoteDue(tonumber(ARGV[3]))
else
  local id = ARGV[2]
  -- Still where BLMOVE put it, or there but leased by a reclaim that took
  -- it for an orphan (not delivered: it keeps its ready time); otherwise a
  -- reclaim put it back in the meantime, or another receiver has it.
  if redis.call('LREM', PROCESSING, 1, id) == 0 and
     not (redis.call('ZSCORE', LEASES, id) and redis.call('HEXISTS', READY_AT, id) == 1) then
    return {-1, {}}
  end
  ids[1] = id
  n = n - 1
end
if n > 0 then
  -- RPOP with a count hands the oldest first.
  local more = redis.call('RPOP', READY, n)
  if more then
    for _, id in ipairs(more) do ids[#ids + 1] = id end
  end
end
if #ids == 0 then
  if ARGV[2] == '' then return {nextDue(), {}} end
  return {-1, {}}
end

local payloads = redis.call('HMGET', ITEMS, unpack(ids))
local since = redis.call('HMGET', READY_AT, unpack(ids))
local counts = redis.call('HMGET', ATTEMPTS, unpack(ids))
-- redis.pcall: META is optional; a key of another type there (anything
-- may write to Redis) must not fail the take after RPOP took the IDs,
-- which would strand them. It is then ignored.
local metas = META and redis.pcall('HMGET', META, unpack(ids))
if type(metas) ~= 'table' or metas.err then metas = {} end
callWith('HDEL', READY_AT, ids)
local out, foreign, nowText = {-1, {}}, {}, tostring(now)
-- Elements per item in the reply: with META, its field too.
local width = META and 4 or 3
local attempts, leases, record = {}, {}, {}
-- k counts the leased items; explicit indexes, since # on a table is a
-- search in Lua 5.1, and this loop runs for every item.
local k = 0
for i, id in ipairs(ids) do
  if not payloads[i] then
    -- An entry with no payload was not pushed by a reliable queue: kept as
    -- a dead letter under a new ID, with itself as payload.
    local dead = 'foreign-' .. now
    local suffix = 0
    while redis.call('HEXISTS', ITEMS, dead) == 1 do
      suffix = suffix + 1
      dead = 'foreign-' .. now .. '-' .. suffix
    end
    redis.call('ZREM', LEASES, id)
    redis.call('HSET', ITEMS, dead, id)
    redis.call('HSET', ATTEMPTS, dead, 0)
    redis.call('HSET', ERRORS, dead, 'entry was not pushed by a reliable queue')
    redis.call('ZADD', DEAD, now, dead)
    foreign[#foreign + 1] = dead
  else
    local attempt = tonumber(counts[i] or '0') + 1
    k = k + 1
    attempts[2 * k - 1], attempts[2 * k] = id, attempt
    leases[2 * k - 1], leases[2 * k] = leaseEnd, id
    record[k] = #id .. ':' .. id .. ' ' .. attempt .. ' ' .. (since[i] or nowText) .. ';'
    local b = width * (k - 1) + 3
    out[b], out[b + 1], out[b + 2] = id, payloads[i], attempt
    if META then out[b + 3] = metas[i] or '' end
  end
end
out[2] = foreign
if k > 0 then
  callWith('HSET', ATTEMPTS, attempts)
  callWith('ZADD', LEASES, leases)
  redis.call('SET', RECEIPT, table.concat(record), 'PX', ARGV[4])
end
return out
