-- status.lua: where job `id` is in its life, read in one step; with
-- ARGV[2] = 1 it also registers a `wait` for the job (unless it has
-- finished), so the finishing script announces it on the finished channel:
-- the read and the registration are atomic, so no finish can fall between.
--
-- A ready job is in the list, which only a walk can search
-- (`find_ready.lua`); this script answers 'pending' for a ready job that
-- keeps its outcome (it is in the `keep` hash) and 'absent' for an id it
-- finds nowhere (ready without keeping its outcome, finished without
-- keeping it, or unknown).
--
-- KEYS[1] outcome key of `id`  KEYS[2] jobs  KEYS[3] leases  KEYS[4] active
-- KEYS[5] scheduled  KEYS[6] retry  KEYS[7] dead  KEYS[8] errors
-- KEYS[9] history  KEYS[10] keep  KEYS[11] cancels  KEYS[12] waiters
-- ARGV[1] id  ARGV[2] 1 to register a wait, else 0
-- ARGV[3] most bytes of the record returned
-- Returns one of
--   {'live', state, score, record prefix, record size, lease or false,
--    error history or false, timeline or false, cancel asked (0/1)}
--   {'outcome', outcome JSON, ms left}
--   {'pending' or 'absent', timeline or false, error history or false}
local id = ARGV[1]
local function register()
  if ARGV[2] == '1' then
    redis.call('HINCRBY', KEYS[12], id, 1)
  end
end
local function live(state, score, lease)
  local record = redis.call('HGET', KEYS[2], id) or ''
  local asked = 0
  if lease and redis.call('HGET', KEYS[11], id) == spool_lease_token(lease) then
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
  return live('active', redis.call('ZSCORE', KEYS[4], id) or '0', lease)
end
local sets = {{KEYS[5], 'scheduled'}, {KEYS[6], 'retry'}, {KEYS[7], 'dead'}}
for _, s in ipairs(sets) do
  local score = redis.call('ZSCORE', s[1], id)
  if score then
    return live(s[2], score, nil)
  end
end
local outcome = redis.call('GET', KEYS[1])
if outcome then
  return {'outcome', outcome, redis.call('PTTL', KEYS[1])}
end
register()
local kind = 'absent'
if redis.call('HEXISTS', KEYS[10], id) == 1 then
  kind = 'pending'
end
return {kind, redis.call('HGET', KEYS[9], id), redis.call('HGET', KEYS[8], id)}
