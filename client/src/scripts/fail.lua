-- fail.lua: active --err, attempts left--> retry set, or
--           active --err, no attempts left / permanent--> dead set, or
--           active --asked to cancel--> cancelled.
--
-- Fenced: nothing changes unless the lease still carries the caller's token.
-- The record stays in the jobs hash, now counting the failed run.
-- The error is appended to the job's error history (newest last, capped)
-- and the run and its end to its timeline; the retry time is Redis's clock
-- plus the delay the worker's retry policy chose. A job whose attempt
-- reached max_attempts goes to dead whatever the mode. Adding to dead trims
-- the dead set to its size cap (oldest first). A dead job that keeps its
-- outcome gets it written (it stays in the dead set too). A run that was
-- asked to cancel ends cancelled instead, whatever the error. Events:
-- `retrying` (level all), `dead` or `cancelled` (terminal), with the error.
-- A failed run counts as a failure for the queue's circuit breaker. A job
-- that dies gives back its group's turn; one that goes to retry keeps it
-- unless the queue's groups are in skip mode (prelude.lua, "Ordered
-- groups").
-- Mode 'snooze' (the handler was rate limited by a downstream): the run
-- does not count as an attempt, nor as a failure; the job goes to the
-- retry set for delay_ms with a timeline entry saying why, and a
-- `retrying` event.
--
-- KEYS[1] active KEYS[2] jobs KEYS[3] leases KEYS[4] errors KEYS[5] retry
-- KEYS[6] dead   KEYS[7] stats KEYS[8] history KEYS[9] cancels
-- KEYS[10] waiters KEYS[11] outcomes KEYS[12] locks KEYS[13] events
-- KEYS[14] settings KEYS[15] followups KEYS[16] outbox
-- ARGV[1] id  ARGV[2] token  ARGV[3] 'retry' | 'dead' | 'snooze'  ARGV[4] delay_ms
-- ARGV[5] error text  ARGV[6] dead set size cap  ARGV[7] error history cap
-- ARGV[8] finished channel
-- Returns 0 lease lost (nothing changed), 1 scheduled for retry, 2 dead,
-- 3 cancelled.
local now = spool_now()
local now_s = spool_int(now)
local q = spool_finishing(8, KEYS[2], KEYS[4], KEYS[7], ARGV[8])
local id, token = ARGV[1], ARGV[2]
-- Puts the job in the retry set, due ARGV[4] ms from now, lowering the
-- queue's due hint.
local function to_retry()
  local at = now + tonumber(ARGV[4])
  redis.call('ZADD', KEYS[5], at, id)
  spool_due(q.ev, at)
end
local lease = redis.call('HGET', KEYS[3], id)
if not lease or not spool_lease_is(lease, token) then
  return 0
end
redis.call('HDEL', KEYS[3], id)
spool_claim_end(KEYS[1], lease)
local stored = redis.call('HGET', KEYS[2], id) or ''
if spool_cancel_asked(q, id, lease) then
  local _, runs = spool_head(stored)
  spool_cancelled(q, id, stored, lease, spool_int((tonumber(runs) or 0) + 1), now)
  return 3
end
if ARGV[3] == 'snooze' then
  local record = spool_restamp(stored, now_s, 0)
  redis.call('HSET', KEYS[2], id, record)
  local _, runs = spool_head(record)
  local attempt_s = spool_int(tonumber(runs) or 0)
  local why = 'snoozed, not counted as an attempt: ' .. ARGV[5]
  spool_event(q.ev, SPOOL_ALL, 'retrying', id, spool_record_type(record), attempt_s, why)
  redis.call('HSET', KEYS[8], id, spool_history_append(spool_history_get(KEYS[8], id, stored), {
    spool_lease_entry(lease, spool_int((tonumber(runs) or 0) + 1)),
    spool_hist_entry(now_s, 'retry', attempt_s, '', why)}))
  to_retry()
  spool_group_retry(KEYS[1], id, lease, q.ev)
  return 1
end
-- The stored record does not count the run that just failed: add it.
local record = spool_restamp(stored, now_s, 1)
redis.call('HSET', KEYS[2], id, record)
local _, attempt, max_attempts = spool_parse(record)
attempt = tonumber(attempt) or 0
max_attempts = tonumber(max_attempts) or 0
spool_push_error(KEYS[4], id, now, attempt, ARGV[5], tonumber(ARGV[7]))
spool_count(KEYS[7], 'f', now, 1)
spool_breaker_note(q.ev, now, 0, 1)

local dead = ARGV[3] == 'dead' or attempt >= max_attempts
local attempt_s = spool_int(attempt)
spool_event(q.ev, dead and SPOOL_TERMINAL or SPOOL_ALL, dead and 'dead' or 'retrying', id,
  spool_record_type(record), attempt_s, ARGV[5])
local history = spool_history_append(spool_history_get(KEYS[8], id, stored), {
  spool_lease_entry(lease, attempt_s),
  spool_hist_entry(now_s, dead and 'dead' or 'retry', attempt_s, '', ARGV[5])})
redis.call('HSET', KEYS[8], id, history)
if dead then
  redis.call('ZADD', KEYS[6], now, id)
  spool_write_outcome(q, id, 'dead', record, attempt_s, history, nil, ARGV[5], now)
  spool_announce(q, id, 'dead')
  spool_unlock(KEYS[12], id, nil)
  spool_follow_ups(q, id, 'dead', nil, ARGV[5], attempt_s, spool_record_type(record), now)
  spool_cap_dead(KEYS[6], {KEYS[2], KEYS[4], KEYS[8], KEYS[15]}, tonumber(ARGV[6]))
  spool_group_end(KEYS[1], id, lease, q.ev)
  return 2
end
to_retry()
spool_group_retry(KEYS[1], id, lease, q.ev)
return 1
