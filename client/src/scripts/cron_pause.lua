-- cron_pause.lua: cron entry --pause--> paused, and paused --resume--> active
-- (the admin API's `cron_pause` / `cron_resume`).
--
-- A paused entry keeps its cursor; `cron_tick.lua` checks `paused` in the
-- same atomic step as the enqueue, so no tick is enqueued once this script
-- has run, and ticks due while paused are counted as skipped, not replayed.
-- The caller has checked that the entry is live (its definition lives in
-- the namespace's slot, this state in the target queue's slot).
--
-- KEYS[1] entry state hash `ns:{queue}:cron:<name>`
-- ARGV[1] '1' pause, '0' resume
-- Writes `paused` = Redis's TIME in ms when pausing (reads TIME itself);
-- removes it when resuming.
-- Returns 1 when the state changed, 0 when it already was as asked.
if ARGV[1] == '1' then
  if redis.call('HEXISTS', KEYS[1], 'paused') == 1 then
    return 0
  end
  redis.call('HSET', KEYS[1], 'paused', spool_int(spool_now()))
  return 1
end
return redis.call('HDEL', KEYS[1], 'paused')
