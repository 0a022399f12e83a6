-- find_ready.lua: read only; finds a ready job by id for the single-job
-- view, walking the list from the fetch end without sending it to the client.
--
-- KEYS[1] ready
-- ARGV[1] job id  ARGV[2] most entries examined
-- Returns the whole record, or false when not found within the limit.
local prefix = spool_id_prefix(ARGV[1])
local found = false
spool_walk_ready(KEYS[1], 0, tonumber(ARGV[2]), function(record)
  if string.sub(record, 1, #prefix) == prefix then
    found = record
    return true
  end
  return false
end)
return found
