-- fail.lua: active --err, attempts left--> retry set, or
--           active --err, no attempts left / permanent--> dead set.
--
-- Fenced: nothing changes unless the lease still carries the caller's token.
-- The record stays in the jobs hash, now counting the failed run.
-- The error is appended to the job's error history (newest last, capped);
-- the retry time is Redis's clock plus the delay the worker's retry policy
-- chose. A job whose attempt reached max_attempts goes to dead whatever the
-- mode. Adding to dead trims the dead set to its size cap (oldest first).
--
-- KEYS[1] active KEYS[2] jobs KEYS[3] leases KEYS[4] errors KEYS[5] retry
-- KEYS[6] dead   KEYS[7] stats
-- ARGV[1] id  ARGV[2] token  ARGV[3] 'retry' | 'dead'  ARGV[4] delay_ms
-- ARGV[5] error text  ARGV[6] dead set size cap  ARGV[7] error history cap
-- Returns 0 lease lost (nothing changed), 1 scheduled for retry, 2 dead.
local now = spool_now()
local id, token = ARGV[1], ARGV[2]
local lease = redis.call('HGET', KEYS[3], id)
if not lease or spool_lease_token(lease) ~= token then
  return 0
end
redis.call('HDEL', KEYS[3], id)
redis.call('ZREM', KEYS[1], id)
-- The stored record does not count the run that just failed: add it.
local record = spool_restamp(redis.call('HGET', KEYS[2], id) or '', spool_int(now), 1)
redis.call('HSET', KEYS[2], id, record)
local _, attempt, max_attempts = spool_parse(record)
attempt = tonumber(attempt) or 0
max_attempts = tonumber(max_attempts) or 0
spool_push_error(KEYS[4], id, now, attempt, ARGV[5], tonumber(ARGV[7]))
spool_count(KEYS[7], 'f', now, 1)

if ARGV[3] == 'dead' or attempt >= max_attempts then
  redis.call('ZADD', KEYS[6], now, id)
  spool_cap_dead(KEYS[6], KEYS[2], KEYS[4], tonumber(ARGV[6]))
  return 2
end
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), id)
return 1
