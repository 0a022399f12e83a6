-- delete.lua: scheduled / retry / dead set --operator delete--> gone.
--
-- KEYS[1] the set  KEYS[2] jobs  KEYS[3] errors
-- ARGV ids to delete; or ARGV[1] = '*' and ARGV[2] = n to delete the n oldest.
-- Returns the number of jobs deleted.
local ids = spool_action_ids(KEYS[1])
local deleted = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    deleted = deleted + 1
  end
end
return deleted
