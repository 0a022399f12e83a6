-- fetch.lua: ready --fetch+lease--> active (leased).
--
-- Claims up to ARGV[1] jobs from the fetch end of the ready list, gives each a
-- fencing token (a per-queue counter, so tokens never repeat) and a lease
-- deadline on Redis's clock, bumps the attempt counter in the record and keeps
-- the record in the lease (`leases[id] = token|worker|record`) so the reaper
-- can put it back if the worker dies. One hash write and one zset write per
-- job: this is the hot path.
-- A list entry that is not a Spool record (raw garbage, foreign JSON) goes to
-- the dead set at once with a readable error; it never reaches a handler.
--
-- KEYS[1] ready  KEYS[2] active  KEYS[3] jobs  KEYS[4] leases  KEYS[5] fence
-- KEYS[6] paused KEYS[7] dead    KEYS[8] errors KEYS[9] wake   KEYS[10] stats
-- ARGV[1] max jobs to claim  ARGV[2] lease in ms  ARGV[3] worker id
-- Returns {now_ms, token1, record1, token2, record2, ...}; {now_ms} when the
-- queue is empty or paused.
local now = spool_now()
if redis.call('EXISTS', KEYS[6]) == 1 then
  return {now}
end
local items = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not items then
  return {now}
end
local last = redis.call('INCRBY', KEYS[5], #items)
local deadline = now + tonumber(ARGV[2])
local out = {now}
local latency, claimed, bad = 0, 0, 0
-- Writes are gathered and sent as a few multi-member commands: one Lua to
-- Redis call per batch instead of per job is what makes fetching cheap.
local lease_args, active_args = {}, {}
for i, record in ipairs(items) do
  local id, attempt, max_attempts, enqueued, rest = spool_parse(record)
  if id then
    local token = tostring(last - #items + i)
    local leased = spool_record(id, tonumber(attempt) + 1, max_attempts, enqueued, rest)
    lease_args[#lease_args + 1] = id
    lease_args[#lease_args + 1] = token .. '|' .. ARGV[3] .. '|' .. leased
    active_args[#active_args + 1] = deadline
    active_args[#active_args + 1] = id
    latency = latency + math.max(0, now - tonumber(enqueued))
    claimed = claimed + 1
    out[#out + 1] = token
    out[#out + 1] = leased
  else
    local bad_id = 'invalid-' .. now .. '-' .. (last - #items + i)
    redis.call('HSET', KEYS[3], bad_id, record)
    redis.call('HSET', KEYS[8], bad_id, cjson.encode({{at_ms = now, attempt = 0,
      error = 'unparsable payload: the ready list held an entry that is not a Spool job record ' ..
        '(a JSON object starting with {"id":..,"attempt":..,"max_attempts":..,"enqueued_ms":..}); ' ..
        'it was moved here unchanged'}}))
    redis.call('ZADD', KEYS[7], now, bad_id)
    bad = bad + 1
  end
end
for i = 1, #lease_args, 1000 do
  redis.call('HSET', KEYS[4], unpack(lease_args, i, math.min(i + 999, #lease_args)))
  redis.call('ZADD', KEYS[2], unpack(active_args, i, math.min(i + 999, #active_args)))
end
if claimed > 0 then
  spool_count(KEYS[10], 'fc', now, claimed)
  spool_count(KEYS[10], 'fl', now, latency)
end
if bad > 0 then
  spool_count(KEYS[10], 'f', now, bad)
end
-- Chain the wake-up: if jobs remain, another idle fetcher should come too.
if redis.call('LLEN', KEYS[1]) > 0 then
  spool_wake(KEYS[9])
end
return out
