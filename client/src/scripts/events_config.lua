-- events_config.lua: an operator sets which events a queue writes and the
-- cap of its stream (the queue's `settings` hash, read by every script that
-- writes events). The change itself is an `events_configured` event naming
-- the actor, written unless the queue's events were and stay off.
--
-- KEYS[1] settings  KEYS[2] events
-- ARGV[1] level: 'off', 'terminal' or 'all'  ARGV[2] cap (entries, > 0)
-- ARGV[3] actor
-- Returns 1.
if not SPOOL_EVENT_LEVELS[ARGV[1]] or not string.match(ARGV[2], '^[1-9]%d*$') then
  return redis.error_reply('ERR spool: events level must be off, terminal or all, and the cap a positive integer')
end
local before = spool_events(KEYS[2], KEYS[1])
redis.call('HSET', KEYS[1], 'events', ARGV[1], 'events_max', ARGV[2])
local after = spool_events(KEYS[2], KEYS[1])
local ev = before.level >= after.level and before or after
spool_event(ev, SPOOL_TERMINAL, 'events_configured', '', nil, nil, nil, ARGV[3],
  'events=' .. ARGV[1] .. ' max=' .. ARGV[2])
return 1
