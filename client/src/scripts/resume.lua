-- resume.lua: paused --operator resume--> queue, waking idle fetchers.
-- A `resumed` event (level terminal) names the actor.
--
-- KEYS[1] paused flag  KEYS[2] wake  KEYS[3] events  KEYS[4] settings
-- ARGV[1] actor
-- Returns 1 when the queue was paused, 0 when it was not.
local was = redis.call('DEL', KEYS[1])
spool_wake(KEYS[2])
spool_event(spool_events(KEYS[3], KEYS[4]), SPOOL_TERMINAL, 'resumed', '', nil, nil, nil,
  ARGV[1], 'queue')
return was
