-- cron_register.lua: a worker process announces its cron table (and keeps
-- it announced); entries no process announced for a while are forgotten.
--
-- Writes each entry's record `{"seen_ms":…,"expires_ms":…,"entry":<definition>}`
-- (times from Redis's TIME) into the entries hash and its forget-after
-- deadline into the expiry zset. Entries whose deadline passed (removed from
-- every worker's table, or every worker is gone) are removed from both and
-- returned, so the caller can delete their per-queue state.
--
-- KEYS[1] entries hash `{ns}:cron:entries`  KEYS[2] expiry zset `{ns}:cron:expiry`
-- ARGV[1] stale_after in ms  ARGV[2..] pairs: entry name, definition JSON
-- Returns {now, removed record JSON...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i],
    '{"seen_ms":' .. now .. ',"expires_ms":' .. expires .. ',"entry":' .. ARGV[i + 1] .. '}')
  redis.call('ZADD', KEYS[2], expires, ARGV[i])
end
local out = {now}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)) do
  local record = redis.call('HGET', KEYS[1], name)
  redis.call('HDEL', KEYS[1], name)
  redis.call('ZREM', KEYS[2], name)
  if record then
    out[#out + 1] = record
  end
end
return out
