-- clear_ready.lua: ready --operator clear--> gone, for every ready job of
-- a queue at once.
--
-- Jobs with a timeline, a uniqueness lock or a waiter
-- lose those too (a waiter hears `deleted`): the list is walked for their
-- ids first, which only happens when one of those hashes exists.
--
-- Jobs waiting for their group's turn go too; jobs cleared that held a
-- turn give it back (prelude.lua, "Ordered groups").
-- One `cleared` event (level terminal) names the actor and the count.
--
-- KEYS[1] ready  KEYS[2] history  KEYS[3] locks  KEYS[4] waiters
-- KEYS[5] events  KEYS[6] settings  KEYS[7] followups (optional: the jobs'
-- are dropped)  KEYS[8] outbox (optional: batch members report themselves
-- cancelled to their batches)
-- ARGV[1] finished channel (a `wait` for a cleared job hears `deleted`)
-- ARGV[2] actor
-- Returns the number of jobs deleted.
local n = spool_ready_len(KEYS[1])
local q = {waiters = KEYS[4], channel = ARGV[1]}
local followups = KEYS[7] or KEYS[2]
local now = KEYS[8] and spool_now()
local ev = spool_events(KEYS[5], KEYS[6])
local grouped = ev.grouped
-- The groups whose turns the jobs in `ready:turn` hold.
local turns = {}
if grouped then
  for _, record in ipairs(redis.call('LRANGE', spool_turn_list(KEYS[1]), 0, -1)) do
    turns[#turns + 1] = select(3, spool_routing(record))
  end
end
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4], followups) > 0 then
  spool_walk_ready(KEYS[1], 0, n, function(record)
    local id = spool_head(record)
    if id then
      if now then
        spool_leave_batches(KEYS[7], KEYS[8], id, now)
      end
      spool_forget(id, {KEYS[2], followups})
      spool_unlock(KEYS[3], id, nil)
      spool_announce(q, id, 'deleted')
    end
    return false
  end)
end
redis.call('DEL', unpack((spool_ready_lists(KEYS[1]))))
if grouped then
  -- Nothing waits for a turn any more; the jobs cleared give theirs back.
  spool_call_chunked('DEL', KEYS[1], spool_group_lists(KEYS[1]))
  redis.call('DEL', spool_sibling(KEYS[1], 'groups_waiting'))
  redis.call('HDEL', spool_sibling(KEYS[1], 'group_turns'), '"')
  spool_group_leave(KEYS[1], turns, ev)
end
spool_event(ev, SPOOL_TERMINAL, 'cleared', '', nil, nil, nil,
  ARGV[2], 'ready: ' .. spool_int(n) .. ' jobs')
return n
