-- cron_tick.lua: cron entry --tick--> ready list (once per tick), and
-- "run now" from the admin API (once per short window).
--
-- Runs after the job_record.lua prelude, which builds and stores the job
-- record exactly as enqueue.lua does. Every key lives in the target queue's
-- slot (`spool:{queue}:…`), so the uniqueness check and the enqueue are one
-- atomic step: a tick's job exists if and only if its tick key was set.
--
-- KEYS[1] ready list  KEYS[2] wake list  KEYS[3] scheduled zset  KEYS[4] jobs hash
-- KEYS[5] entry state hash (cursor_ms, last_tick_ms, last_run_ms, last_job_id,
--         skipped, last_skipped_ms, paused)
-- KEYS[6] tick key `…:cron:<name>:<tick_ms>` (mode tick) or run-now key
--         `…:cron:<name>:now` (mode now); its value is the job id
-- KEYS[7] events stream  KEYS[8] settings hash (optional: the job's
--         `enqueued` event at level all)
-- ARGV[1] mode: 'tick' or 'now'
-- mode tick:
--   ARGV[2] cursor the caller planned from ('' = entry has no cursor yet)
--   ARGV[3] new cursor (ms)  ARGV[4] tick to enqueue (ms, 0 = none)
--   ARGV[5] older due ticks skipped (count)  ARGV[6] latest of them (ms, 0 = none)
--   ARGV[7] tick key TTL (ms)  ARGV[8..12] the job (id, max_attempts, 0, 0, body)
-- mode now:
--   ARGV[2] idempotency window (ms)  ARGV[3] actor (a `run_now` event,
--   level terminal)  ARGV[4..8] the job
-- Returns {status, value}:
--   {'fired', job id}        the job was created
--   {'duplicate', job id}    the tick (or run-now window) already has a job
--   {'paused', ''}           the entry is paused: the tick is recorded as skipped
--   {'advanced', ''}         only the cursor moved (nothing to enqueue)
--   {'raced', cursor}        the cursor is not the one planned from (another
--                            process handled these ticks): re-plan from it
-- Time: `last_run_ms` is stamped from Redis's TIME; the tick times come
-- from the caller, which computed them from Redis's TIME as well.
local now = spool_now()
local state = KEYS[5]

local function fire(ttl, first)
  local existing = redis.call('GET', KEYS[6])
  if existing then
    return {'duplicate', existing}
  end
  local bad = spool_check_groups(ARGV, first)
  if bad then
    return bad
  end
  local out = spool_enqueue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, ARGV, first,
    spool_events(KEYS[7], KEYS[8]))
  redis.call('SET', KEYS[6], out[1], 'PX', ttl)
  redis.call('HSET', state, 'last_run_ms', now, 'last_job_id', out[1])
  return {'fired', out[1]}
end

if ARGV[1] == 'now' then
  local fired = fire(tonumber(ARGV[2]), 4)
  if fired[1] == 'fired' then
    local job_type = spool_record_type(spool_record(ARGV[4], '0', '0', '0', string.sub(ARGV[8], 2)))
    spool_event(spool_events(KEYS[7], KEYS[8]), SPOOL_TERMINAL, 'run_now', fired[2], job_type,
      '0', nil, ARGV[3], 'cron entry ' .. string.match(KEYS[6], ':cron:([^:]*):now$'))
  end
  return fired
end

-- A cursor that is not a whole number (another writer's bytes) reads as
-- none, as the worker read it (cron_cursors): the entry starts again from
-- now instead of racing forever.
local cursor = redis.call('HGET', state, 'cursor_ms') or ''
if not string.match(cursor, '^%-?%d+$') then
  cursor = ''
end
if cursor ~= ARGV[2] then
  return {'raced', cursor}
end

local skipped = tonumber(ARGV[5])
local last_skipped = ARGV[6]
local result = {'advanced', ''}
if ARGV[4] ~= '0' then
  if redis.call('HEXISTS', state, 'paused') == 1 then
    skipped = skipped + 1
    last_skipped = ARGV[4]
    result = {'paused', ''}
  else
    result = fire(tonumber(ARGV[7]), 8)
    if result.err then
      return result
    end
    if result[1] == 'fired' then
      redis.call('HSET', state, 'last_tick_ms', ARGV[4])
    end
  end
end
redis.call('HSET', state, 'cursor_ms', ARGV[3])
if skipped > 0 then
  redis.call('HINCRBY', state, 'skipped', skipped)
  redis.call('HSET', state, 'last_skipped_ms', last_skipped)
end
return result
