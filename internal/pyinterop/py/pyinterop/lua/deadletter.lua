#!lua flags=allow-oom
-- deadletter: keeps items that Pop took from an at-most-once queue but
-- could not decode, in that queue's dead-letter list. It takes that one
-- key and no other: a plain queue's key (<prefix>queue:<name>, no hash
-- tag) and its dead-letter list are in different cluster slots, so the
-- script may not declare the queue's own key. It uses none of the
-- prelude's names (READY … READY_AT are not this script's keys; READY is
-- bound to KEYS[1], the dead-letter list, and must not be used).
--
-- Flags: allow-oom. The items were just popped from the queue, so putting
-- them here takes back the memory they held a moment ago; without the flag
-- a server whose memory is full (maxmemory with noeviction) would refuse
-- the write, and the items, already off the queue, would be lost.
--
-- KEYS[1] DEAD_LIST -> <Q>:dead, the queue's dead-letter LIST: the items go to its head
-- ARGV[i] -> the i-th item as popped (raw bytes), oldest first
--
-- Returns: the length of the dead-letter list.
local DEAD_LIST = KEYS[1]
local n = 0
for i = 1, #ARGV do
  n = redis.call('LPUSH', DEAD_LIST, ARGV[i])
end
return n
