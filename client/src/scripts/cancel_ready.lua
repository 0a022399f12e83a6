-- cancel_ready.lua: ready --cancel--> cancelled, for one job by id.
--
-- Looks in one window of the ready list as find_ready.lua does; the entry
-- found is removed (LREM from the tail) and the job ends cancelled as in
-- cancel.lua. A job fetched meanwhile is not there: the caller asks
-- cancel.lua again.
--
-- KEYS[1] ready  KEYS[2] jobs  KEYS[3] errors  KEYS[4] stats  KEYS[5] history
-- KEYS[6] cancels  KEYS[7] waiters  KEYS[8] outcomes  KEYS[9] locks
-- KEYS[10] events  KEYS[11] settings  KEYS[12] followups  KEYS[13] outbox
-- ARGV[1] job id  ARGV[2] position to start at  ARGV[3] entries to examine
-- ARGV[4] finished channel  ARGV[5] actor ('' for a producer's cancel)
-- Returns {1 cancelled or 0 not found, entries examined}.
local now = spool_now()
local id = ARGV[1]
local found, seen, list = spool_find_ready(KEYS[1], id, tonumber(ARGV[2]), tonumber(ARGV[3]))
if not found or redis.call('LREM', list, -1, found) == 0 then
  return {0, seen}
end
spool_group_unlisted(KEYS[1], list, found)
local q = spool_finishing(5, KEYS[2], KEYS[3], KEYS[4], ARGV[4])
if ARGV[5] and ARGV[5] ~= '' then
  q.actor, q.selection = ARGV[5], 'job'
end
local _, attempt = spool_head(found)
spool_cancelled(q, id, found, nil, attempt or '0', now)
return {1, seen}
