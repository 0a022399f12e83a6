-- queue_limit.lua: an operator sets (or lifts) a queue's global
-- concurrency limit: at most that many of its jobs leased at once across
-- every worker (fetch.lua reads it from the `settings` hash in the HMGET
-- it does anyway). The change is a `limit_changed` event naming the actor,
-- and a wake-up of the queue's idle fetchers (a raised limit has room).
--
-- KEYS[1] settings  KEYS[2] events  KEYS[3] wake
-- ARGV[1] the limit: a positive integer, or '' to lift it  ARGV[2] actor
-- Returns 1.
if ARGV[1] ~= '' and not string.match(ARGV[1], '^[1-9]%d*$') then
  return redis.error_reply('ERR spool: a concurrency limit is a positive integer, or empty to lift it')
end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'concurrency')
else
  redis.call('HSET', KEYS[1], 'concurrency', ARGV[1])
end
spool_event(spool_events(KEYS[2], KEYS[1]), SPOOL_TERMINAL, 'limit_changed', '', nil, nil, nil,
  ARGV[2], 'concurrency=' .. (ARGV[1] == '' and 'none' or ARGV[1]))
spool_wake(KEYS[3])
return 1
