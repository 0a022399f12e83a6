-- find_ready.lua: read only; finds a ready job by id for the single-job
-- view, walking the list from the fetch end without sending it to the client.
--
-- KEYS[1] ready
-- ARGV[1] job id  ARGV[2] most entries examined
-- Returns the whole record, or false when not found within the limit.
return spool_find_ready(KEYS[1], ARGV[1], tonumber(ARGV[2])) or false
