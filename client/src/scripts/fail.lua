-- fail.lua: active --err, attempts left--> retry set, or
--           active --err, no attempts left / permanent--> dead set.
--
-- Fenced: nothing changes unless the lease still carries the caller's token.
-- The record moves from the lease to the jobs hash.
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
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, token = ARGV[1], ARGV[2]
local lease = redis.call('HGET', KEYS[3], id)
if not lease or string.match(lease, '^(%d+)|') ~= token then
  return 0
end
redis.call('HDEL', KEYS[3], id)
redis.call('ZREM', KEYS[1], id)
local record = string.match(lease, '^%d+|[^|]*|(.*)$') or ''
redis.call('HSET', KEYS[2], id, record)
local attempt, max_attempts = string.match(record, '^{"id":"[^"]*","attempt":(%d+),"max_attempts":(%d+),')
attempt = tonumber(attempt) or 0
max_attempts = tonumber(max_attempts) or 0

local history = {}
local raw = redis.call('HGET', KEYS[4], id)
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then history = decoded end
end
history[#history + 1] = {at_ms = now, attempt = attempt, error = ARGV[5]}
local cap = tonumber(ARGV[7])
while #history > cap do table.remove(history, 1) end
redis.call('HSET', KEYS[4], id, cjson.encode(history))

local minute = math.floor(now / 60000)
redis.call('HINCRBY', KEYS[7], 'f:' .. minute, 1)
redis.call('HINCRBY', KEYS[7], 'f', 1)

if ARGV[3] == 'dead' or attempt >= max_attempts then
  redis.call('ZADD', KEYS[6], now, id)
  local excess = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[6])
  if excess > 0 then
    local oldest = redis.call('ZRANGE', KEYS[6], 0, excess - 1)
    for _, old in ipairs(oldest) do
      redis.call('ZREM', KEYS[6], old)
      redis.call('HDEL', KEYS[2], old)
      redis.call('HDEL', KEYS[4], old)
    end
  end
  return 2
end
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), id)
return 1
