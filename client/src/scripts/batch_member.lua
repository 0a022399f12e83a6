-- batch_member.lua: a member's end (its queue's outbox) --> batch.
--
-- The mover (`Runtime::move_follow_ups`) applies each `!batch"…` report a
-- member's end left in its queue's outbox (prelude.lua, "Follow-up jobs")
-- to the batch in the home queue's slot: the member's state and the
-- counters change (a member retried from dead and then done moves from
-- dead to done), its result is kept for the chord, and callbacks that come
-- due go to the home outbox (batch_shared.lua). Reports may repeat (a move
-- redone after a crash, two movers at once) or come late: a report no
-- newer than the member's state, or of the same state, changes nothing.
-- A batch that no longer exists (expired) ignores reports.
--
-- KEYS as batch_shared.lua says.
-- ARGV[1] batch id  ARGV[2] member id  ARGV[3] state (done, dead or
-- cancelled)  ARGV[4] Redis ms of the end  ARGV[5] member queue
-- ARGV[6] result (JSON) or ''
-- Returns how many callbacks went to the home outbox.
local now = spool_now()
local member, state, at = ARGV[2], ARGV[3], tonumber(ARGV[4])
if state ~= 'done' and state ~= 'dead' and state ~= 'cancelled' then
  return redis.error_reply('ERR spool: a batch member ends done, dead or cancelled')
end
if not at or not string.match(ARGV[4], '^%d+$') or member == '' or
    string.find(member, '"', 1, true) then
  return redis.error_reply('ERR spool: batch_member takes batch id, member id, state, ms, queue, result')
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local old = redis.call('HGET', KEYS[2], member)
local old_state, old_at
if old then
  old_state, old_at = string.match(old, '^(%a+)"(%d+)')
  old_at = tonumber(old_at) or 0
  if old_state == state or (old_at or 0) > at then
    return 0
  end
  if old_state == 'done' or old_state == 'dead' or old_state == 'cancelled' then
    redis.call('HINCRBY', KEYS[1], old_state, -1)
  end
else
  redis.call('RPUSH', KEYS[3], member .. '"' .. (ARGV[5] or ''))
end
redis.call('HSET', KEYS[2], member, state .. '"' .. spool_int(at))
redis.call('HINCRBY', KEYS[1], state, 1)
local result = ARGV[6] or ''
if state == 'done' and result ~= '' and pcall(cjson.decode, result) then
  redis.call('HSET', KEYS[4], member, result)
else
  redis.call('HDEL', KEYS[4], member)
end
if state == 'dead' and redis.call('HEXISTS', KEYS[1], 'first_dead') == 0 then
  redis.call('HSET', KEYS[1], 'first_dead', member)
end
return spool_batch_settle(now, ARGV[1])
