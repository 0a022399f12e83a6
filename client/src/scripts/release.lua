-- release.lua: active (leased) --shutdown hand-back--> ready.
--
-- Used by a worker that stops before its running jobs finish. Fenced and
-- batched. The job goes back to the fetch end of the ready list (it has
-- waited longest) and its attempt counter is decremented: an interrupted run
-- is not the job's failure.
--
-- KEYS[1] active  KEYS[2] jobs (unused, kept for a stable layout)  KEYS[3] leases
-- KEYS[4] ready  KEYS[5] wake
-- ARGV pairs: id, token
-- Returns the number of jobs handed back.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local released = 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lease = redis.call('HGET', KEYS[3], id)
  if lease and string.match(lease, '^(%d+)|') == token then
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[1], id)
    local record = string.match(lease, '^%d+|[^|]*|(.*)$')
    if record then
      local jid, attempt, max_attempts, rest = string.match(record,
        '^{"id":"([^"]*)","attempt":(%d+),"max_attempts":(%d+),"enqueued_ms":%d+,(.+)$')
      if jid then
        record = '{"id":"' .. jid .. '","attempt":' .. math.max(0, tonumber(attempt) - 1) ..
          ',"max_attempts":' .. max_attempts .. ',"enqueued_ms":' .. now .. ',' .. rest
      end
      redis.call('RPUSH', KEYS[4], record)
      released = released + 1
    end
  end
end
if released > 0 then
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
end
return released
