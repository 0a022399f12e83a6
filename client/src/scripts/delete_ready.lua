-- delete_ready.lua: ready --operator delete--> gone, for one job by id.
--
-- Looks in one window of the list as find_ready.lua does and removes the
-- entry found with LREM from the tail, so the entry found is the one
-- removed; a job fetched meanwhile is not there to remove (double clicks
-- are safe).
--
-- KEYS[1] ready  KEYS[2] history  KEYS[3] locks  KEYS[4] waiters
-- KEYS[5] events  KEYS[6] settings (a `deleted` event, level terminal)
-- KEYS[7] followups (optional: the job's are dropped)  KEYS[8] outbox
-- (optional: a batch member reports itself cancelled to its batch)
-- ARGV[1] job id  ARGV[2] position to start at  ARGV[3] entries to examine
-- ARGV[4] finished channel (a `wait` for the job hears `deleted`)
-- ARGV[5] actor
-- Returns {1 removed or 0 not found, entries examined}.
local now = KEYS[8] and spool_now()
local found, seen, list = spool_find_ready(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
if not found then
  return {0, seen}
end
local removed = redis.call('LREM', list, -1, found)
if removed > 0 then
  if now then
    spool_leave_batches(KEYS[7], KEYS[8], ARGV[1], now)
  end
  spool_forget(ARGV[1], {KEYS[2], KEYS[7] or KEYS[2]})
  spool_unlock(KEYS[3], ARGV[1], nil)
  spool_group_unlisted(KEYS[1], list, found)
  spool_announce({waiters = KEYS[4], channel = ARGV[4]}, ARGV[1], 'deleted')
  local _, attempt = spool_head(found)
  spool_event(spool_events(KEYS[5], KEYS[6]), SPOOL_TERMINAL, 'deleted', ARGV[1],
    spool_record_type(found), attempt, nil, ARGV[5], 'job')
end
return {removed, seen}
