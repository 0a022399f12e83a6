-- reap.lua: active --lease expired (worker died)--> ready, or dead when the
-- attempt that died was the last one, or cancelled when the run had been
-- asked to cancel.
--
-- The run that died counts as an attempt, so a job that keeps killing its
-- worker runs out of attempts and ends in the dead set.
-- Leases expire by claim (prelude.lua, "Claims"): the leases that name a
-- claim whose deadline passed are reaped (one read of the leases hash for
-- all of them: claims expire only when a worker dies or lets go of a
-- lease), then the claims are dropped. A member of `active` without a
-- claim entry is a job id (the layout before claims) and is reaped as that
-- one job.
-- A reaped job goes to the fetch end of the ready list and gets an error
-- history entry naming the worker that held the lease, and the run and its
-- end on its timeline. A job that dies here and keeps its outcome gets it.
-- Events: `retrying` (level all), `dead` or `cancelled` (terminal).
--
-- KEYS[1] active KEYS[2] jobs KEYS[3] leases KEYS[4] errors KEYS[5] ready
-- KEYS[6] dead   KEYS[7] wake KEYS[8] stats KEYS[9] history KEYS[10] cancels
-- KEYS[11] waiters KEYS[12] outcomes KEYS[13] locks KEYS[14] events
-- KEYS[15] settings KEYS[16] followups KEYS[17] outbox
-- ARGV[1] most expired members of `active` taken per call (each claim's
-- leases all go at once)  ARGV[2] dead set size cap  ARGV[3] error history cap
-- ARGV[4] finished channel  ARGV[5] cancel channel
-- A job reaped back to ready keeps its group's turn; one that dies gives
-- it back.
-- Each reaped lease is published on the cancel channel as `!lost <token>
-- <id>`: a worker still running that lease (hung, partitioned) stops the
-- run at once. Runs reaped count as failures for the circuit breaker.
-- Returns {returned_to_ready, moved_to_dead, ms until the next lease
-- deadline or -1 when no lease is left}: the reaper sleeps until then (at
-- most its interval), so a dead worker's jobs come back right after their
-- leases expire.
local now = spool_now()
local now_s = spool_int(now)
local q = spool_finishing(9, KEYS[2], KEYS[4], KEYS[8], ARGV[4])
local max = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max)
local claims = spool_sibling(KEYS[1], 'claims')
local to_ready, to_dead = 0, 0
-- Returns job `id`, whose lease `lease` expired, to ready (or dead, or
-- cancelled).
local function reap(id, lease)
  local worker = spool_lease_worker(lease) or 'unknown'
  redis.call('HDEL', KEYS[3], id)
  if ARGV[5] and lease ~= '' then
    redis.call('PUBLISH', ARGV[5], '!lost ' .. spool_lease_token(lease) .. ' ' .. id)
  end
  local stored = redis.call('HGET', KEYS[2], id)
  if stored and spool_cancel_asked(q, id, lease) then
    local _, runs = spool_head(stored)
    spool_cancelled(q, id, stored, lease, spool_int((tonumber(runs) or 0) + 1), now)
  elseif stored then
    -- The run that died counts as an attempt.
    local record = spool_restamp(stored, now_s, 1)
    local jid, attempt, max_attempts = spool_parse(record)
    attempt = tonumber(attempt) or 0
    local why = 'lease expired: worker ' .. worker .. ' stopped extending it (crashed, hung or lost Redis)'
    spool_push_error(KEYS[4], id, now, attempt, why, tonumber(ARGV[3]))
    local dead = not (jid and attempt < tonumber(max_attempts))
    local attempt_s = spool_int(attempt)
    spool_event(q.ev, dead and SPOOL_TERMINAL or SPOOL_ALL, dead and 'dead' or 'retrying', id,
      spool_record_type(record), attempt_s, why)
    local history = spool_history_append(spool_history_get(KEYS[9], id, stored), {
      spool_lease_entry(lease, attempt_s),
      spool_hist_entry(now_s, dead and 'dead' or 'ready', attempt_s, '', why)})
    redis.call('HSET', KEYS[9], id, history)
    if not dead then
      redis.call('HDEL', KEYS[2], id)
      spool_ready_return(KEYS[5], record, lease)
      to_ready = to_ready + 1
    else
      redis.call('HSET', KEYS[2], id, record)
      redis.call('ZADD', KEYS[6], now, id)
      spool_write_outcome(q, id, 'dead', record, attempt_s, history, nil, why, now)
      spool_announce(q, id, 'dead')
      spool_unlock(KEYS[13], id, nil)
      spool_follow_ups(q, id, 'dead', nil, why, attempt_s, spool_record_type(record), now)
      spool_group_end(KEYS[1], id, lease, q.ev)
      to_dead = to_dead + 1
    end
  end
end
-- The expired claims (a member with a count), and the other members.
local counts = #expired > 0 and redis.call('HMGET', claims, unpack(expired)) or {}
local gone, legacy = {}, {}
for i, member in ipairs(expired) do
  redis.call('ZREM', KEYS[1], member)
  if counts[i] then
    gone[#gone + 1] = member
  elseif member ~= SPOOL_HASH_GUARD then
    legacy[#legacy + 1] = member
  end
end
if #gone > 0 then
  spool_call_chunked('HDEL', claims, gone)
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local lease = all[i + 1]
    local bar = spool_find(lease, '|', 1, true)
    if bar then
      local at = bar + 1
      for _, claim in ipairs(gone) do
        if spool_find(lease, claim, at, true) == at and
            (#lease == at + #claim - 1 or spool_byte(lease, at + #claim) == 124) then
          reap(all[i], lease)
          break
        end
      end
    end
  end
end
for _, member in ipairs(legacy) do
  -- A job id (before claims): its lease, if it still has one and that
  -- lease is not a live claim's.
  local lease = redis.call('HGET', KEYS[3], member)
  local claim = lease and spool_lease_claim(lease)
  if lease and not (claim and redis.call('HEXISTS', claims, claim) == 1) then
    reap(member, lease)
  end
end
if to_ready + to_dead > 0 then
  spool_count(KEYS[8], 'f', now, to_ready + to_dead)
  spool_breaker_note(q.ev, now, 0, to_ready + to_dead)
end
if to_dead > 0 then
  spool_cap_dead(KEYS[6], {KEYS[2], KEYS[4], KEYS[9], KEYS[16]}, tonumber(ARGV[2]))
end
if to_ready > 0 then
  spool_wake(KEYS[7])
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
-- The guard member (prelude.lua, SPOOL_HASH_GUARD) is never due.
local next_expiry = head[2] and head[1] ~= SPOOL_HASH_GUARD and
  math.max(0, tonumber(head[2]) - now) or -1
return {to_ready, to_dead, next_expiry}
