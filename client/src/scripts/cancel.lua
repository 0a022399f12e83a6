-- cancel.lua: scheduled / retry --cancel--> cancelled at once; active
-- --cancel--> asked to cancel (the run ends cancelled when its lease ends).
--
-- A scheduled or retrying job becomes cancelled now: terminal, counted
-- (`c` in the stats), its outcome kept when it keeps one, a waiter told. A
-- running job's lease is marked in the `cancels` hash with its token and
-- the holder is told on the cancel channel (`<token> <id>`); whichever
-- script ends that lease (ack, fail, reap, release) ends the job cancelled.
-- A worker that misses the message learns it from extend.lua at its next
-- heartbeat. A ready job is not found here (see cancel_ready.lua).
-- Events (level terminal): `cancelled`, or `cancel_requested` for a running
-- job; both name the actor when an operator asked.
--
-- KEYS[1] outcomes  KEYS[2] jobs  KEYS[3] leases  KEYS[4] active
-- KEYS[5] scheduled  KEYS[6] retry  KEYS[7] dead  KEYS[8] errors
-- KEYS[9] history  KEYS[10] cancels  KEYS[11] waiters  KEYS[12] stats
-- KEYS[13] locks  KEYS[14] events  KEYS[15] settings  KEYS[16] followups
-- KEYS[17] outbox
-- ARGV[1] id  ARGV[2] finished channel  ARGV[3] cancel channel
-- ARGV[4] actor ('' for a producer's cancel)
-- Returns {'cancelled', from state} | {'signalled', worker, 1 new or 0
-- asked before} | {'finished', state} | {'absent'}.
local now = spool_now()
local id = ARGV[1]
local q = {jobs = KEYS[2], errors = KEYS[8], history = KEYS[9], cancels = KEYS[10],
  waiters = KEYS[11], stats = KEYS[12], locks = KEYS[13],
  outcomes = KEYS[1], channel = ARGV[2], ev = spool_events(KEYS[14], KEYS[15]),
  followups = KEYS[16], outbox = KEYS[17]}
if ARGV[4] and ARGV[4] ~= '' then
  q.actor, q.selection = ARGV[4], 'job'
end
local lease = redis.call('HGET', KEYS[3], id)
if lease then
  local token = spool_lease_token(lease) or ''
  local worker = spool_lease_worker(lease) or ''
  if redis.call('HGET', KEYS[10], id) == token then
    return {'signalled', worker, 0}
  end
  redis.call('HSET', KEYS[10], id, token)
  redis.call('PUBLISH', ARGV[3], token .. ' ' .. id)
  if q.ev.level >= SPOOL_TERMINAL then
    local record = redis.call('HGET', KEYS[2], id) or ''
    local _, runs = spool_head(record)
    spool_event(q.ev, SPOOL_TERMINAL, 'cancel_requested', id, spool_record_type(record),
      spool_int((tonumber(runs) or 0) + 1), nil, q.actor, q.selection)
  end
  return {'signalled', worker, 1}
end
for _, s in ipairs({{KEYS[5], 'scheduled'}, {KEYS[6], 'retry'}}) do
  if redis.call('ZREM', s[1], id) == 1 then
    local record = redis.call('HGET', KEYS[2], id)
    local _, attempt = spool_head(record or '')
    spool_cancelled(q, id, record, nil, attempt or '0', now, s[2])
    return {'cancelled', s[2]}
  end
end
if redis.call('ZSCORE', KEYS[7], id) then
  return {'finished', 'dead'}
end
local outcome = spool_outcome_find(KEYS[1], id, now)
if outcome then
  -- The state is the third element (a result too deep for cjson: match).
  local ok, value = pcall(cjson.decode, outcome)
  local state = ok and type(value) == 'table' and value[3]
  if type(state) ~= 'string' then
    state = string.match(outcome, '^%[%-?%d+,[^,]*,"(%a+)"') or 'done'
  end
  return {'finished', state}
end
return {'absent'}
