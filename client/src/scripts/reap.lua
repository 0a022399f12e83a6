-- reap.lua: active --lease expired (worker died)--> ready, or dead when the
-- attempt that died was the last one.
--
-- The run that died counts as an attempt, so a job that keeps killing its
-- worker runs out of attempts and ends in the dead set.
-- A reaped job goes to the fetch end of the ready list and gets an error
-- history entry naming the worker that held the lease.
--
-- KEYS[1] active KEYS[2] jobs KEYS[3] leases KEYS[4] errors KEYS[5] ready
-- KEYS[6] dead   KEYS[7] wake KEYS[8] stats
-- ARGV[1] max jobs per call  ARGV[2] dead set size cap  ARGV[3] error history cap
-- Returns {returned_to_ready, moved_to_dead}.
local now = spool_now()
local now_s = spool_int(now)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local to_ready, to_dead = 0, 0
for _, id in ipairs(expired) do
  local worker = spool_lease_worker(redis.call('HGET', KEYS[3], id) or '') or 'unknown'
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[1], id)
  local stored = redis.call('HGET', KEYS[2], id)
  if stored then
    -- The run that died counts as an attempt.
    local record = spool_restamp(stored, now_s, 1)
    local jid, attempt, max_attempts = spool_parse(record)
    attempt = tonumber(attempt) or 0
    spool_push_error(KEYS[4], id, now, attempt,
      'lease expired: worker ' .. worker .. ' stopped extending it (crashed, hung or lost Redis)',
      tonumber(ARGV[3]))
    if jid and attempt < tonumber(max_attempts) then
      redis.call('HDEL', KEYS[2], id)
      redis.call('RPUSH', KEYS[5], record)
      to_ready = to_ready + 1
    else
      redis.call('HSET', KEYS[2], id, record)
      redis.call('ZADD', KEYS[6], now, id)
      to_dead = to_dead + 1
    end
  end
end
if to_ready + to_dead > 0 then
  spool_count(KEYS[8], 'f', now, to_ready + to_dead)
end
if to_dead > 0 then
  spool_cap_dead(KEYS[6], KEYS[2], KEYS[4], tonumber(ARGV[2]))
end
if to_ready > 0 then
  spool_wake(KEYS[7])
end
return {to_ready, to_dead}
