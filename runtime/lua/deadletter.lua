#!lua flags=allow-oom
-- deadletter: keeps items that Pop took from an at-most-once queue but
-- could not decode, in that queue's dead-letter list. It takes that one
-- key: a queue of the plain layout and its dead letters are in different
-- cluster slots, so the script may not declare the queue's other keys
-- (the prelude's names other than READY are nil here).
--
-- Flags: allow-oom. The items were just popped from the queue, so putting
-- them here takes back the memory they held a moment ago; without the flag
-- a server whose memory is full (maxmemory with noeviction) would refuse
-- the write, and the items, already off the queue, would be lost.
--
-- KEYS[1] READY -> <Q>:dead, the queue's dead-letter LIST: the items go to
--                  its head (the one key; the prelude names KEYS[1] READY)
-- ARGV[i] -> the i-th item as popped (raw bytes), oldest first
--
-- Returns: the length of the dead-letter list.
local n = 0
for i = 1, #ARGV do
  n = redis.call('LPUSH', READY, ARGV[i])
end
return n
