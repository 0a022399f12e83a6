-- trim.lua: retention for one queue (the trimmer's tick).
--
-- Drops dead jobs older than the age cap and beyond the size cap (oldest
-- first) together with their records and error histories, per-minute
-- stats fields older than the stats window, and the buckets of kept
-- outcomes whose retention has ended (UNLINK: Redis frees them in the
-- background). Totals are kept.
--
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] errors  KEYS[4] stats  KEYS[5] history
-- KEYS[6] outcomes
-- ARGV[1] dead size cap  ARGV[2] dead age cap ms  ARGV[3] stats window ms
-- ARGV[4] max dead jobs removed per call
-- Returns {dead_removed, stats_fields_removed, outcome_buckets_removed}.
local now = spool_now()
local budget = tonumber(ARGV[4])
local removed = 0
local function drop(ids)
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    spool_forget(id, {KEYS[2], KEYS[3], KEYS[5]})
    removed = removed + 1
  end
end
drop(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, budget))
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  drop(redis.call('ZRANGE', KEYS[1], 0, math.min(excess, budget) - 1))
end
local oldest_minute = math.floor((now - tonumber(ARGV[3])) / 60000)
local stale = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
  local minute = string.match(field, ':(%d+)$')
  if minute and tonumber(minute) < oldest_minute then
    stale[#stale + 1] = field
  end
end
for i = 1, #stale, 500 do
  redis.call('HDEL', KEYS[4], unpack(stale, i, math.min(i + 499, #stale)))
end
local ended = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, budget)
for _, e in ipairs(ended) do
  redis.call('UNLINK', KEYS[6] .. ':' .. e)
end
spool_call_chunked('ZREM', KEYS[6], ended)
return {removed, #stale, #ended}
