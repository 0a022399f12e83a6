-- clear_ready.lua: ready --operator clear--> gone, for every ready job of
-- a queue at once.
--
-- Jobs with a timeline or a retention entry (retried, promoted, or keeping
-- their outcome) lose those too: the list is walked for their ids first,
-- which only happens when either hash exists.
--
-- KEYS[1] ready  KEYS[2] history  KEYS[3] keep  KEYS[4] locks
-- Returns the number of jobs deleted.
local n = redis.call('LLEN', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1
    or redis.call('EXISTS', KEYS[4]) == 1 then
  spool_walk_ready(KEYS[1], 0, n, function(record)
    local id = spool_head(record)
    if id then
      spool_forget(id, {KEYS[2], KEYS[3]})
      spool_unlock(KEYS[4], id, nil)
    end
    return false
  end)
end
redis.call('DEL', KEYS[1])
return n
