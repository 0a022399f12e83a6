-- cron_register.lua: a worker process announces its cron table (and keeps
-- it announced); entries no process announced for a while are forgotten.
--
-- Writes each entry's record `{"seen_ms":…,"expires_ms":…,"entry":<definition>}`
-- (times from Redis's TIME, read here) into the entries hash, its
-- forget-after deadline into the expiry zset, and its target queue into the
-- queue registry (so the dashboard lists the queue before the first tick,
-- as an enqueue would). Entries whose deadline passed (removed from every
-- worker's table, or every worker is gone) are removed from the hash and
-- the zset and returned, so the caller can delete their per-queue state
-- with `cron_forget.lua`. All three keys share the namespace's hash tag.
--
-- KEYS[1] entries hash `{ns}:cron:entries`  KEYS[2] expiry zset `{ns}:cron:expiry`
-- KEYS[3] queue registry set `{ns}:queues`
-- ARGV[1] stale_after in ms  ARGV[2..] triples: entry name, queue, definition JSON
-- Returns {now, removed record JSON...}.
local now = spool_now()
local expires = now + tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i],
    '{"seen_ms":' .. spool_int(now) .. ',"expires_ms":' .. spool_int(expires) ..
    ',"entry":' .. ARGV[i + 2] .. '}')
  redis.call('ZADD', KEYS[2], expires, ARGV[i])
  redis.call('SADD', KEYS[3], ARGV[i + 1])
end
local out = {now}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. spool_int(now))) do
  local record = redis.call('HGET', KEYS[1], name)
  redis.call('HDEL', KEYS[1], name)
  redis.call('ZREM', KEYS[2], name)
  if record then
    out[#out + 1] = record
  end
end
return out
