#!lua flags=allow-oom
-- promote: makes delayed items that are due ready. The DataStore that
-- nacked an item with a delay runs it when the item is due, so that the
-- item reaches receivers that are already waiting on time.
--
-- Flags: allow-oom. It moves due IDs from DELAYED to READY, with their
-- ready time: bounded by the items that exist, never a payload.
--
-- KEYS[1] READY     -> <Q>, where due items go (which wakes a BLMOVE)
-- KEYS[4] DELAYED   -> <Q>:delayed, ID -> when it is due
-- KEYS[9] READY_AT  -> <Q>:ready_at, for items made ready
-- ARGV[1] -> at most this many items
--
-- Returns: {promoted, ms}: how many it made ready, and how long until the
-- next delayed item is due (-1 if none).
local promoted = promoteDue(tonumber(ARGV[1]))
return {promoted, nextDue()}
