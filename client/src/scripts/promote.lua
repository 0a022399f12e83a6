-- promote.lua: scheduled set --due--> ready, retry set --due--> ready.
--
-- Moves up to ARGV[1] jobs whose time (score, Redis ms) has come from each of
-- the two sets to the ready list, stamps `enqueued_ms` with Redis's clock so
-- queue latency counts from the moment the job became ready, and wakes a
-- fetcher. Several schedulers may run this at once: each job moves once.
--
-- Each moved job gets a `ready` entry on its timeline (a scheduled job's
-- timeline starts with `scheduled` at its enqueue time).
--
-- KEYS[1] scheduled  KEYS[2] retry  KEYS[3] jobs  KEYS[4] ready  KEYS[5] wake
-- KEYS[6] history  KEYS[7] outbox (optional: its length is reported, so
-- the scheduler moves follow-ups only when there are some)  KEYS[8]
-- settings (optional: its due hint is set to the sets' new head, or
-- deleted when both are empty; prelude.lua, "The due hint")
-- ARGV[1] max jobs per set per call
-- Returns {moved, ms until the next due job or -1 when both sets are
-- empty, follow-ups waiting in the outbox}.
local now = spool_now()
local now_s = spool_int(now)
local limit = tonumber(ARGV[1])
local moved = 0
local first_state = {'scheduled', 'retry'}
for s = 1, 2 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[s], '-inf', now, 'LIMIT', 0, limit)
  moved = moved + spool_set_to_ready(KEYS[s], KEYS[3], KEYS[4], KEYS[5], KEYS[6], due, now_s,
    first_state[s])
end
local next_due = -1
for s = 1, 2 do
  local head = redis.call('ZRANGE', KEYS[s], 0, 0, 'WITHSCORES')
  if head[2] then
    local wait = math.max(0, tonumber(head[2]) - now)
    if next_due < 0 or wait < next_due then next_due = wait end
  end
end
-- Written only when it changes: schedulers run this every pass.
if KEYS[8] then
  local due = next_due >= 0 and spool_int(now + next_due) or false
  if redis.call('HGET', KEYS[8], 'due') ~= due then
    if due then
      redis.call('HSET', KEYS[8], 'due', due)
    else
      redis.call('HDEL', KEYS[8], 'due')
    end
  end
end
return {moved, next_due, KEYS[7] and redis.call('LLEN', KEYS[7]) or 0}
