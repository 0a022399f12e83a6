-- resume.lua: paused --operator resume--> queue, waking idle fetchers.
--
-- KEYS[1] paused flag  KEYS[2] wake
-- Returns 1 when the queue was paused, 0 when it was not.
local was = redis.call('DEL', KEYS[1])
spool_wake(KEYS[2])
return was
