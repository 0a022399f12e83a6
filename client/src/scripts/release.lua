-- release.lua: active (leased) --shutdown hand-back--> ready, or
-- --asked to cancel--> cancelled.
--
-- Used by a worker that stops before its running jobs finish. Fenced and
-- batched. The job goes back to the fetch end of the ready list (it has
-- waited longest) without counting the interrupted run: it is not the job's
-- failure. Its timeline gets the run and the hand-back. A run that was
-- asked to cancel ends cancelled instead (a `cancelled` event); a hand-back
-- writes none.
--
-- KEYS[1] active  KEYS[2] jobs  KEYS[3] leases  KEYS[4] ready  KEYS[5] wake
-- KEYS[6] errors  KEYS[7] stats KEYS[8] history KEYS[9] cancels
-- KEYS[10] waiters KEYS[11] outcomes KEYS[12] locks KEYS[13] events
-- KEYS[14] settings KEYS[15] followups KEYS[16] outbox
-- ARGV[1] finished channel, then pairs: id, token
-- Returns the number of jobs handed back.
local now = spool_now()
local now_s = spool_int(now)
local q = spool_finishing(8, KEYS[2], KEYS[6], KEYS[7], ARGV[1])
local released = 0
-- The leases ended per claim (prelude.lua, "Claims").
local claim_counts = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lease = redis.call('HGET', KEYS[3], id)
  if lease and spool_lease_is(lease, token) then
    redis.call('HDEL', KEYS[3], id)
    local claim = spool_lease_claim(lease)
    if claim then
      claim_counts[claim] = (claim_counts[claim] or 0) + 1
    end
    local record = redis.call('HGET', KEYS[2], id)
    if record then
      local _, attempt = spool_head(record)
      local run = spool_int((tonumber(attempt) or 0) + 1)
      if spool_cancel_asked(q, id, lease) then
        spool_cancelled(q, id, record, lease, run, now)
      else
        -- The interrupted run is not counted: the record never counted it.
        redis.call('HSET', KEYS[8], id, spool_history_append(spool_history_get(KEYS[8], id, record), {
          spool_lease_entry(lease, run),
          spool_hist_entry(now_s, 'ready', attempt or '0', '', 'handed back: the worker shut down')}))
        redis.call('HDEL', KEYS[2], id)
        spool_ready_return(KEYS[4], spool_restamp(record, now_s, 0), lease)
        released = released + 1
      end
    end
  end
end
spool_claims_end(KEYS[1], claim_counts)
if released > 0 then
  spool_wake(KEYS[5])
end
return released
