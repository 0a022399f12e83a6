-- ready_walk.lua: walking a ready list from its fetch end, shared by
-- peek_ready.lua, find_ready.lua and delete_ready.lua (`scripts/mod.rs`
-- prepends it after prelude.lua).
--
-- Records in a list can only be read whole (there is no GETRANGE for list
-- elements), so the walk reads LRANGE chunks sized by what it has seen:
-- doubling while a chunk held less than 256 KiB, halving when it held more.
-- Small records go 1,000 per call; 10 MiB records one at a time, so Lua
-- holds about one of them at once.

-- Calls visit(record) for `count` entries from position `from` (0 = the
-- next job to be fetched, the list's tail), in fetch order, until visit
-- returns true. Returns that position, or nil.
local function spool_walk_ready(key, from, count, visit)
  local size = 1
  local at = from
  local stop_at = from + count
  while at < stop_at do
    local take = math.min(size, stop_at - at)
    local chunk = redis.call('LRANGE', key, -(at + take), -(at + 1))
    local got = #chunk
    local bytes = 0
    for i = got, 1, -1 do
      local record = chunk[i]
      chunk[i] = nil
      bytes = bytes + #record
      if visit(record) then
        return at
      end
      at = at + 1
    end
    if got < take then
      return nil
    end
    if bytes < 262144 then
      size = math.min(size * 2, 1000)
    elseif size > 1 then
      size = math.floor(size / 2)
    end
  end
  return nil
end

-- The record of job `id` among the first `max` entries from the fetch end
-- (its prefix `{"id":"<id>",` identifies it; ids have no quote), or nil.
local function spool_find_ready(key, id, max)
  local prefix = '{"id":"' .. id .. '",'
  local found
  spool_walk_ready(key, 0, max, function(record)
    if string.sub(record, 1, #prefix) == prefix then
      found = record
      return true
    end
    return false
  end)
  return found
end
