-- enqueue.lua: app --enqueue--> ready list, or --at/in--> scheduled set.
--
-- Runs after the job_record.lua prelude, which builds and stores the records
-- (see its header for the record layout); this script adds the idempotency
-- key.
--
-- KEYS[1] ready list        KEYS[2] wake list        KEYS[3] scheduled zset
-- KEYS[4] jobs hash         KEYS[5] idempotency key  (only when ARGV[1] > 0)
-- then, optional and last, the keep hash (needed by bodies that start with
-- keep_outcome_ms; callers written before it existed pass 4 or 5 keys)
-- ARGV[1] idempotency window in ms (0 = no key)
-- ARGV[2..] groups of 5: id, max_attempts, at_ms (0 = none),
--           delay_ms (0 = none), body (JSON object without the fields above)
-- Returns {1, {id...}} when the jobs were created, {0, {existing_id}} when
-- the idempotency key was already taken inside its window.
-- Time comes from Redis (TIME): `delay_ms` is added to Redis's clock, never
-- to the producer's.
-- Every group is checked before anything is written, the idempotency key
-- included: a malformed call changes nothing.
local now = spool_now()
local window = tonumber(ARGV[1])
local k_keep = nil
if #KEYS > (window and window > 0 and 5 or 4) then
  k_keep = KEYS[#KEYS]
end
local bad = spool_check_groups(ARGV, 2, k_keep)
if bad then
  return bad
end

if window > 0 then
  local first = redis.call('GET', KEYS[5])
  if first then
    return {0, {first}}
  end
  redis.call('SET', KEYS[5], ARGV[2], 'PX', window)
end

return {1, spool_enqueue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], k_keep, now, ARGV, 2)}
