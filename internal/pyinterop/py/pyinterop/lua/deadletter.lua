#!lua flags=allow-oom
-- deadletter: keeps items that Pop took from an at-most-once queue but
-- could not decode, in that queue's dead-letter list. An at-most-once
-- queue's keys have the same suffixes as those of an at-least-once queue
-- (Go passes reliableKeys of the queue), but its DEAD is a LIST.
--
-- Flags: allow-oom. The items were just popped from the queue, so putting
-- them here takes back the memory they held a moment ago; without the flag
-- a server whose memory is full (maxmemory with noeviction) would refuse
-- the write, and the items, already off the queue, would be lost.
--
-- KEYS[5] DEAD  -> <Q>:dead, the queue's dead-letter LIST: the items go to its head
-- ARGV[i] -> the i-th item as popped (raw bytes), oldest first
--
-- Returns: the length of the dead-letter list.
local n = 0
for i = 1, #ARGV do
  n = redis.call('LPUSH', DEAD, ARGV[i])
end
return n
