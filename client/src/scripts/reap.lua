-- reap.lua: active --lease expired (worker died)--> ready, or dead when the
-- attempt that died was the last one.
--
-- The attempt was already counted when the job was fetched, so a job that
-- keeps killing its worker runs out of attempts and ends in the dead set.
-- A reaped job goes to the fetch end of the ready list and gets an error
-- history entry naming the worker that held the lease.
--
-- KEYS[1] active KEYS[2] jobs KEYS[3] leases KEYS[4] errors KEYS[5] ready
-- KEYS[6] dead   KEYS[7] wake KEYS[8] stats
-- ARGV[1] max jobs per call  ARGV[2] dead set size cap  ARGV[3] error history cap
-- Returns {returned_to_ready, moved_to_dead}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local to_ready, to_dead = 0, 0
for _, id in ipairs(expired) do
  local lease = redis.call('HGET', KEYS[3], id) or ''
  local worker, record = string.match(lease, '^%d+|([^|]*)|(.*)$')
  worker = worker or 'unknown'
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[1], id)
  if record then
    local jid, attempt, max_attempts, rest = string.match(record,
      '^{"id":"([^"]*)","attempt":(%d+),"max_attempts":(%d+),"enqueued_ms":%d+,(.+)$')
    attempt = tonumber(attempt) or 0
    local history = {}
    local raw = redis.call('HGET', KEYS[4], id)
    if raw then
      local ok, decoded = pcall(cjson.decode, raw)
      if ok and type(decoded) == 'table' then history = decoded end
    end
    history[#history + 1] = {at_ms = now, attempt = attempt,
      error = 'lease expired: worker ' .. worker .. ' stopped extending it (crashed, hung or lost Redis)'}
    local cap = tonumber(ARGV[3])
    while #history > cap do table.remove(history, 1) end
    redis.call('HSET', KEYS[4], id, cjson.encode(history))
    if jid and attempt < tonumber(max_attempts) then
      redis.call('RPUSH', KEYS[5], '{"id":"' .. jid .. '","attempt":' .. attempt ..
        ',"max_attempts":' .. max_attempts .. ',"enqueued_ms":' .. now .. ',' .. rest)
      to_ready = to_ready + 1
    else
      redis.call('HSET', KEYS[2], id, record)
      redis.call('ZADD', KEYS[6], now, id)
      to_dead = to_dead + 1
    end
  end
end
if to_ready + to_dead > 0 then
  local minute = math.floor(now / 60000)
  redis.call('HINCRBY', KEYS[8], 'f:' .. minute, to_ready + to_dead)
  redis.call('HINCRBY', KEYS[8], 'f', to_ready + to_dead)
end
if to_dead > 0 then
  local excess = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[2])
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[6], 0, excess - 1)) do
      redis.call('ZREM', KEYS[6], old)
      redis.call('HDEL', KEYS[2], old)
      redis.call('HDEL', KEYS[4], old)
    end
  end
end
if to_ready > 0 then
  redis.call('LPUSH', KEYS[7], '1')
  redis.call('LTRIM', KEYS[7], 0, 0)
end
return {to_ready, to_dead}
