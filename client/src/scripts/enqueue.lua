-- enqueue.lua: app --enqueue--> ready list, or --at/in--> scheduled set.
--
-- Runs after the job_record.lua prelude, which builds and stores the records
-- (see its header for the record layout); this script adds the uniqueness
-- (idempotency) key.
--
-- KEYS[1] ready list        KEYS[2] wake list        KEYS[3] scheduled zset
-- KEYS[4] jobs hash         KEYS[5] uniqueness key (any key of the queue
-- when ARGV[1] is 0)        KEYS[6] locks hash
-- KEYS[7] events stream     KEYS[8] settings hash
-- KEYS[9] followups hash (with groups of 6)
-- Callers written before KEYS[6] existed pass 4 keys, or 5 with a window;
-- they keep working (without lock modes), as do callers of 6 keys (without
-- events).
-- ARGV[1] the uniqueness key's lock: '0' none; '<ms>' a window (the key is
--         remembered that long, whatever happens to the job); '<ms>:started'
--         held until a worker starts the job, '<ms>:finished' until it is
--         done, dead or cancelled (either at most <ms>: every lock has a TTL);
--         followed by '/6' when the groups have a sixth value, or by '/s'
--         when the jobs share max_attempts, at_ms and delay_ms: then
--         ARGV[2..4] are those three and groups of 2 (id, body) follow;
--         '/t' is '/s' with each body sent without its opening `{` (the
--         record is then built without cutting it: a bulk of jobs due
--         now costs Redis about 6 % less than with '/s')
-- ARGV[2..] groups of 5: id, max_attempts, at_ms (0 = none),
--           delay_ms (0 = none), body (JSON object without the fields above);
--           or of 6: the same and the job's follow-ups (a JSON array of
--           [on, queue, id, max_attempts, body], or '')
-- Returns {1, {id...}} when the jobs were created ({1, n} with '/s'),
-- {0, {existing_id}} when the key was already taken (nothing created).
-- Time comes from Redis (TIME): `delay_ms` is added to Redis's clock, never
-- to the producer's.
-- Every group is checked before anything is written, the key included: a
-- malformed call changes nothing.
local now = spool_now()
local ttl, mode, sixth = string.match(ARGV[1] or '', '^(%d+):?(%a*)(/?[6st]?)$')
if not ttl or (mode ~= '' and mode ~= 'started' and mode ~= 'finished') or
    (sixth ~= '' and sixth ~= '/s' and sixth ~= '/t' and (sixth ~= '/6' or not KEYS[9])) then
  return redis.error_reply("ERR spool: ARGV[1] must be 0, <ms>, <ms>:started or <ms>:finished, then optionally /6 (with KEYS[9]), /s or /t")
end
local size, first, shared = 5, 2, nil
local tails = sixth == '/t'
if sixth == '/6' then
  size = 6
elseif sixth == '/s' or tails then
  if not ARGV[4] then
    return redis.error_reply('ERR spool: ' .. sixth .. ' needs max_attempts, at_ms and delay_ms in ARGV[2..4]')
  end
  size, first, shared = 2, 5, {ARGV[2], ARGV[3], ARGV[4]}
end
ttl = tonumber(ttl)
local k_locks = KEYS[6]
if mode ~= '' and (not k_locks or ttl == 0) then
  return redis.error_reply('ERR spool: a lock held until started or finished needs a TTL and the locks hash (KEYS[6])')
end
local ev = spool_events(KEYS[7], KEYS[8])
-- A bulk of jobs due now (the common bulk): one pass (spool_enqueue_now).
if shared and ttl == 0 then
  local n = spool_enqueue_now(KEYS[1], KEYS[2], now, ARGV, first, ev, shared, tails)
  if n then
    return {1, n}
  end
end
local argv = ARGV
if tails then
  -- The general way takes whole bodies.
  argv = {}
  for i = 1, #ARGV do
    argv[i] = (i >= first and (i - first) % 2 == 1) and '{' .. ARGV[i] or ARGV[i]
  end
end
local bad = spool_check_groups(argv, first, size, shared)
if bad then
  return bad
end

if ttl > 0 then
  local taken = redis.call('GET', KEYS[5])
  if taken then
    return {0, {taken}}
  end
  redis.call('SET', KEYS[5], ARGV[first], 'PX', ttl)
  if mode ~= '' then
    redis.call('HSET', k_locks, ARGV[first], string.sub(mode, 1, 1) .. KEYS[5])
  end
end

local ids = spool_enqueue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, argv, first,
  ev, size, KEYS[9], shared)
if shared then
  -- The caller has the ids (a bulk): sending them back costs Redis more
  -- than the rest of the reply.
  return {1, #ids}
end
return {1, ids}
