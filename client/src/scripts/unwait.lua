-- unwait.lua: drops one `wait` registration for job ARGV[1] (a wait that
-- timed out or will register again); the field goes at zero.
--
-- KEYS[1] waiters
-- ARGV[1] job id
-- Returns the registrations left.
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
return left
