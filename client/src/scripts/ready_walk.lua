-- ready_walk.lua: walking a ready list from its fetch end, shared by
-- peek_ready.lua, find_ready.lua and delete_ready.lua (`scripts/mod.rs`
-- prepends it after prelude.lua).
--
-- Records in a list can only be read whole (there is no GETRANGE for list
-- elements), so the walk reads LRANGE chunks sized by what it has seen:
-- doubling while a chunk held less than 256 KiB, halving when it held more.
-- Small records go 1,000 per call; 10 MiB records one at a time, so Lua
-- holds about one of them at once.

-- Calls visit(record) for `count` entries of list `key` from position
-- `from` (0 = the list's tail, fetched first), until visit returns true.
-- Returns true when it did (or nil), and the number of entries visited.
local function spool_walk_list(key, from, count, visit)
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
      at = at + 1
      if visit(record) then
        return true, at - from
      end
    end
    if got < take then
      break
    end
    if bytes < 262144 then
      size = math.min(size * 2, 1000)
    elseif size > 1 then
      size = math.floor(size / 2)
    end
  end
  return nil, at - from
end

-- Calls visit(record) for `count` ready entries from position `from` (0 =
-- the next job to be fetched), in fetch order across the queue's ready
-- lists (one, or one per priority, then the groups' waiting lists:
-- prelude.lua), until visit returns true. The groups' lists are listed
-- only when the walk gets past the others. Returns true when it did (or
-- nil), the number of entries visited (fewer than `count` without a hit
-- means the lists ended), and the list holding the entry visited last.
local function spool_walk_ready(ready, from, count, visit)
  local lists, grouped = spool_ready_lists(ready)
  if #lists == 1 and not grouped then
    local hit, seen = spool_walk_list(ready, from, count, visit)
    return hit, seen, ready
  end
  local at, seen = from, 0
  local pass = 1
  while true do
    for _, key in ipairs(lists) do
      local len = redis.call('LLEN', key)
      if at < len then
        local hit, n = spool_walk_list(key, at, count - seen, visit)
        seen = seen + n
        if hit then
          return true, seen, key
        end
        if seen >= count then
          return nil, seen, ready
        end
        at = 0
      else
        at = at - len
      end
    end
    if pass == 2 or not grouped then
      return nil, seen, ready
    end
    pass = 2
    lists = spool_group_lists(ready)
  end
end

-- Looks for job `id` among `count` entries from position `from` (its prefix
-- `{"id":"<id>",` identifies it; ids have no quote). Returns its record (or
-- nil), the number of entries examined and the list holding it. Callers walk a long list in
-- windows, one script call each, so Redis serves other clients in between.
local function spool_find_ready(key, id, from, count)
  local prefix = '{"id":"' .. id .. '",'
  local found
  local _, seen, list = spool_walk_ready(key, from, count, function(record)
    if string.sub(record, 1, #prefix) == prefix then
      found = record
      return true
    end
    return false
  end)
  return found, seen, list
end
