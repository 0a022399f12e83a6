-- find_ready.lua: read only; looks for a ready job by id for the single-job
-- view in one window of the list, without sending the list to the client.
--
-- KEYS[1] ready
-- ARGV[1] job id  ARGV[2] position to start at (0 = next to be fetched)
-- ARGV[3] entries to examine
-- Returns {record or false, entries examined}; fewer examined than asked
-- without a record means the list ended.
local found, seen = spool_find_ready(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return {found or false, seen}
