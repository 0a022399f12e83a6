-- delete_ready.lua: ready --operator delete--> gone, for one job by id.
--
-- The entry is found as by find_ready.lua (from the fetch end) and removed
-- with LREM from the tail, so the entry found is the one removed; a job
-- fetched meanwhile is not there to remove (double clicks are safe).
--
-- KEYS[1] ready
-- ARGV[1] job id  ARGV[2] most entries examined
-- Returns 1 when the job was removed, 0 when it was not found.
local found = spool_find_ready(KEYS[1], ARGV[1], tonumber(ARGV[2]))
if not found then
  return 0
end
return redis.call('LREM', KEYS[1], -1, found)
