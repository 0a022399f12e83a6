-- trim.lua: retention for one queue (the trimmer's tick).
--
-- Drops dead jobs older than the age cap and beyond the size cap (oldest
-- first) together with their records and error histories, per-minute
-- stats fields older than the stats window, and the buckets of kept
-- outcomes whose retention has ended (UNLINK: Redis frees them in the
-- background), and worker aliases beyond the newest SPOOL_WORKER_ALIASES_KEPT
-- (an outcome whose alias is gone names no worker). Totals are kept.
--
-- KEYS[1] dead  KEYS[2] jobs  KEYS[3] errors  KEYS[4] stats  KEYS[5] history
-- KEYS[6] outcomes  KEYS[7] workers  KEYS[8] followups (optional: a trimmed
-- dead job's follow-ups go with it)
-- ARGV[1] dead size cap  ARGV[2] dead age cap ms  ARGV[3] stats window ms
-- ARGV[4] max dead jobs removed per call
-- Returns {dead_removed, stats_fields_removed, outcome_buckets_removed}.
-- Worker aliases kept per queue: a few per worker process that ever ran.
local SPOOL_WORKER_ALIASES_KEPT = 10000
local now = spool_now()
local budget = tonumber(ARGV[4])
local removed = 0
local function drop(ids)
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    spool_forget(id, {KEYS[2], KEYS[3], KEYS[5], KEYS[8] or KEYS[2]})
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
-- Worker aliases (`workers`: `<alias>` → id, `=<id>` → alias, `#` the last
-- alias given, `<` the highest alias dropped), oldest first.
local last = tonumber(redis.call('HGET', KEYS[7], '#') or '0') or 0
local low = tonumber(redis.call('HGET', KEYS[7], '<') or '0') or 0
local dropped = 0
while low < last - SPOOL_WORKER_ALIASES_KEPT and dropped < budget do
  low = low + 1
  local alias = spool_int(low)
  local worker = redis.call('HGET', KEYS[7], alias)
  if worker then
    redis.call('HDEL', KEYS[7], alias)
    if redis.call('HGET', KEYS[7], '=' .. worker) == alias then
      redis.call('HDEL', KEYS[7], '=' .. worker)
    end
  end
  dropped = dropped + 1
end
if dropped > 0 then
  redis.call('HSET', KEYS[7], '<', spool_int(low))
end
return {removed, #stale, #ended}
