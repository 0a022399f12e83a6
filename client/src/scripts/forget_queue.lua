-- forget_queue.lua: an empty queue --operator forget--> unknown. Refuses,
-- changing nothing, while any job of the queue is ready (any priority, or
-- waiting for its group's turn), leased, scheduled, retrying or dead, or a
-- triggered follow-up waits in its outbox. Else deletes the queue's paused
-- flag, settings (fleet controls, event level) and wake list, so a queue of
-- that name made later starts fresh. Statistics, events and kept outcomes
-- stay and expire as usual.
--
-- The registry lives in another hash slot: the caller takes the name off it
-- first (`unregister_queues.lua`) and puts it back when this script
-- refuses, so an enqueue racing the forget (its script, then its
-- `register_queues.lua`) always leaves the queue registered.
--
-- KEYS[1] ready  KEYS[2] active  KEYS[3] scheduled  KEYS[4] retry
-- KEYS[5] dead  KEYS[6] outbox  KEYS[7] paused  KEYS[8] settings
-- KEYS[9] wake
-- Returns {1} when forgotten, else {0, ready, active, scheduled, retry,
-- dead, outbox}. Leased jobs are counted in the leases hash (less its
-- guard field), and job ids in `active` (the layout before claims,
-- prelude.lua "Claims"); claims left without leases are deleted with the
-- queue.
local leases = spool_sibling(KEYS[2], 'leases')
local claims = spool_sibling(KEYS[2], 'claims')
local leased = redis.call('HLEN', leases) - redis.call('HEXISTS', leases, '"')
if leased == 0 then
  -- Members of `active` that are not claims.
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(inf', 'LIMIT', 0, 100)) do
    if redis.call('HEXISTS', claims, member) == 0 then
      leased = leased + 1
    end
  end
end
local counts = {
  spool_ready_len(KEYS[1]),
  leased,
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  redis.call('ZCARD', KEYS[5]),
  redis.call('LLEN', KEYS[6]),
}
for _, n in ipairs(counts) do
  if n > 0 then
    table.insert(counts, 1, 0)
    return counts
  end
end
redis.call('DEL', KEYS[7], KEYS[8], KEYS[9], KEYS[2], claims, leases)
return {1}
