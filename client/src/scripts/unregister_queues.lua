-- unregister_queues.lua: takes queue names off the registry of known
-- queues (the first step of an operator's forget; `forget_queue.lua` then
-- checks the queue is empty in its own slot).
--
-- KEYS[1] queue registry
-- ARGV queue names
-- Returns the number of names that were registered.
return redis.call('SREM', KEYS[1], unpack(ARGV))
