-- queue_control.lua: an operator sets (or lifts) one of a queue's fleet
-- controls, kept in its `settings` hash where fetch.lua reads them in the
-- HMGET it does anyway:
--   concurrency  at most N of its jobs leased at once across every worker
--   rate         at most N jobs started per period (`n/period_ms[/burst]`)
--   key_rate     the same for each rate key of its jobs (lifting it forgets
--                the keys' buckets; jobs waiting for their key's start run
--                when it comes)
--   breaker      a circuit breaker (`percent/window/cooldown_ms/probes`)
--   groups       ordered groups: turns per group and whether a retrying job
--                keeps its turn (`limit/hold` or `limit/skip`; default 1/hold)
--   breaker_reset  closes the breaker now (ARGV[2] ignored)
-- Raising the groups' limit gives the turns now free to the jobs waiting
-- for them at once; `groups_wide` becomes '1' for good when a limit above
-- 1 is set ('0' until then: prelude.lua, spool_group_single). Changing the
-- rate limit keeps its bucket; changing or lifting the breaker (or
-- resetting it) closes it and forgets its window. The change is a
-- `limit_changed` event (`breaker_closed` for a reset) naming the actor,
-- and a wake-up of the queue's idle fetchers (a raised limit has room).
--
-- KEYS[1] settings  KEYS[2] events  KEYS[3] wake
-- ARGV[1] control  ARGV[2] value, or '' to lift it  ARGV[3] actor
-- Returns 1.
local control, value = ARGV[1], ARGV[2]
local ok
if control == 'concurrency' then
  ok = string.match(value, '^[1-9]%d*$')
elseif control == 'rate' or control == 'key_rate' then
  ok = spool_rate_parse(value)
elseif control == 'breaker' then
  ok = spool_breaker_parse(value)
elseif control == 'groups' then
  ok = string.match(value, '^[1-9]%d*/hold$') or string.match(value, '^[1-9]%d*/skip$')
elseif control == 'breaker_reset' then
  ok, value = true, ''
else
  return redis.error_reply('ERR spool: unknown queue control ' .. control)
end
if value ~= '' and not ok then
  return redis.error_reply('ERR spool: invalid ' .. control .. ' value ' .. value ..
    ' (concurrency: N > 0; rate, key_rate: jobs/period_ms[/burst]; breaker: percent/window/cooldown_ms/probes; groups: N/hold or N/skip)')
end
local gone = {}
if value ~= '' then
  redis.call('HSET', KEYS[1], control, value)
elseif control ~= 'breaker_reset' then
  gone = {control, control == 'rate' and 'rate_tat' or nil}
end
if control == 'breaker' or control == 'breaker_reset' then
  for _, f in ipairs({'br_state', 'br_until', 'br_probes', 'br_ok', 'br_n', 'br_f', 'br_pf'}) do
    gone[#gone + 1] = f
  end
end
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
end
if control == 'groups' and value ~= '' then
  -- Whether any group may ever have held more than one turn
  -- (spool_group_single): once a limit above 1 was set, for good.
  local wide = redis.call('HGET', KEYS[1], 'groups_wide') == '1' or
    not string.match(value, '^1/')
  redis.call('HSET', KEYS[1], 'groups_wide', wide and '1' or '0')
end
if control == 'groups' and redis.call('HEXISTS', KEYS[1], 'grouped') == 1 then
  -- A raised limit: turns now free go to the groups' waiting jobs.
  spool_group_fill(KEYS[1])
end
if control == 'key_rate' and value == '' then
  redis.call('DEL', spool_sibling(KEYS[1], 'rate_keys'), spool_sibling(KEYS[1], 'rate_reserved'))
end
local ev = spool_events(KEYS[2], KEYS[1])
if control == 'breaker_reset' then
  spool_event(ev, SPOOL_TERMINAL, 'breaker_closed', '', nil, nil, nil, ARGV[3], 'reset')
else
  spool_event(ev, SPOOL_TERMINAL, 'limit_changed', '', nil, nil, nil, ARGV[3],
    control .. '=' .. (value == '' and 'none' or value))
end
spool_wake(KEYS[3])
return 1
