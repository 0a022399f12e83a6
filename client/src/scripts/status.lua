-- status.lua: where job `id` is in its life, read in one step; with
-- ARGV[2] = 1 it also registers a `wait` for the job (unless it has
-- finished), so the finishing script announces it on the finished channel:
-- the read and the registration are atomic, so no finish can fall between.
--
-- A ready job is in the list, which only a walk can search
-- (`find_ready.lua`); this script answers 'absent' for an id it finds
-- nowhere (ready, finished without keeping its outcome, or unknown).
--
-- KEYS[1] outcomes  KEYS[2] jobs  KEYS[3] leases  KEYS[4] active
-- KEYS[5] scheduled  KEYS[6] retry  KEYS[7] dead  KEYS[8] errors
-- KEYS[9] history  KEYS[10] cancels  KEYS[11] waiters  KEYS[12] workers
-- ARGV[1] id  ARGV[2] 1 to register a wait, else 0
-- ARGV[3] most bytes of the record returned
-- Returns one of
--   {'live', state, score, record prefix, record size, lease or false,
--    error history or false, timeline or false, cancel asked (0/1)}
--   {'outcome', outcome JSON, its bucket's end (ms), ms left until then,
--    the worker its alias names or false}
--   {'absent', timeline or false, error history or false}
local id = ARGV[1]
local function register()
  if ARGV[2] == '1' then
    redis.call('HINCRBY', KEYS[11], id, 1)
  end
end
local function live(state, score, lease)
  local record = redis.call('HGET', KEYS[2], id) or ''
  local asked = 0
  if lease and redis.call('HGET', KEYS[10], id) == spool_lease_token(lease) then
    asked = 1
  end
  if state ~= 'dead' then
    register()
  end
  return {'live', state, score, string.sub(record, 1, tonumber(ARGV[3])), #record,
    lease or false, redis.call('HGET', KEYS[8], id), redis.call('HGET', KEYS[9], id), asked}
end
local lease = redis.call('HGET', KEYS[3], id)
if lease then
  -- The deadline is its claim's (prelude.lua, "Claims"); a lease from
  -- before claims has its own member.
  return live('active', redis.call('ZSCORE', KEYS[4], spool_lease_claim(lease) or id) or '0', lease)
end
local sets = {{KEYS[5], 'scheduled'}, {KEYS[6], 'retry'}, {KEYS[7], 'dead'}}
for _, s in ipairs(sets) do
  local score = redis.call('ZSCORE', s[1], id)
  if score then
    return live(s[2], score, nil)
  end
end
local now = spool_now()
local outcome, _, ends = spool_outcome_find(KEYS[1], id, now)
if outcome then
  local alias = string.match(outcome, '^%[%-?%d+,(%d+),')
  return {'outcome', outcome, spool_int(ends), spool_int(ends - now),
    alias and redis.call('HGET', KEYS[12], alias) or false}
end
register()
return {'absent', redis.call('HGET', KEYS[9], id), redis.call('HGET', KEYS[8], id)}
