-- clear_ready.lua: ready --operator clear--> gone, for every ready job of
-- a queue at once.
--
-- KEYS[1] ready
-- Returns the number of jobs deleted.
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
