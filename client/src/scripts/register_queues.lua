-- register_queues.lua: adds queue names to the registry of known queues
-- (workers at start-up, so empty queues show up too). Names are validated
-- by the caller (keys.rs's rule).
--
-- KEYS[1] queue registry
-- ARGV queue names
-- Returns the number of names that were new.
return redis.call('SADD', KEYS[1], unpack(ARGV))
