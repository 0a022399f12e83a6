-- release.lua: active (leased) --shutdown hand-back--> ready.
--
-- Used by a worker that stops before its running jobs finish. Fenced and
-- batched. The job goes back to the fetch end of the ready list (it has
-- waited longest) without counting the interrupted run: it is not the job's
-- failure.
--
-- KEYS[1] active  KEYS[2] jobs  KEYS[3] leases  KEYS[4] ready  KEYS[5] wake
-- ARGV pairs: id, token
-- Returns the number of jobs handed back.
local now = spool_now()
local now_s = spool_int(now)
local released = 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lease = redis.call('HGET', KEYS[3], id)
  if lease and spool_lease_token(lease) == token then
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[1], id)
    -- The interrupted run is not counted: the record never counted it.
    released = released + spool_to_ready(KEYS[2], KEYS[4], id, now_s, 'RPUSH')
  end
end
if released > 0 then
  spool_wake(KEYS[5])
end
return released
