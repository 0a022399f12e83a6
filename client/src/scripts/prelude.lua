-- prelude.lua: helpers shared by every script; `scripts/mod.rs` prepends
-- this file, so each piece of Lua below exists once in the source.
--
-- The job record's first four fields are owned by the scripts and always
-- written first, in this order: {"id":"…","attempt":N,"max_attempts":N,
-- "enqueued_ms":N, … — so they can be read and rewritten with an anchored
-- string match instead of re-encoding the producer's args (cjson would turn
-- `[]` into `{}` and round large integers).

-- Redis's clock in ms: the one clock (DESIGN invariant 3).
local function spool_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An integer as a decimal string. Scripts pass strings, not Lua numbers, to
-- redis.call and to concatenations in per-job loops: converting a number
-- goes through printf, which shows up at the top of a profile.
local function spool_int(n)
  return string.format('%d', n)
end

-- id, attempt, max_attempts, enqueued_ms and the position where the rest of
-- the object starts — or nil for an entry that is not a Spool record.
local function spool_head(record)
  return string.match(record,
    '^{"id":"([^"\\]+)","attempt":(%d+),"max_attempts":(%d+),"enqueued_ms":(%d+),()')
end

-- id, attempt, max_attempts, enqueued_ms, rest — or nil. The pattern stops at
-- a position capture and the rest is cut with string.sub: matching `(.+)$`
-- would walk the whole record char by char.
local function spool_parse(record)
  local id, attempt, max_attempts, enqueued, at = spool_head(record)
  if not id or at > #record then
    return nil
  end
  return id, attempt, max_attempts, enqueued, string.sub(record, at)
end

-- Builds a record from its script-owned fields and the rest of the object.
local function spool_record(id, attempt, max_attempts, enqueued_ms, rest)
  return '{"id":"' .. id .. '","attempt":' .. attempt .. ',"max_attempts":' ..
    max_attempts .. ',"enqueued_ms":' .. enqueued_ms .. ',' .. rest
end

-- The record made ready again at `now_s` (a string from spool_int) with its
-- attempt shifted by `delta`; an entry that is not a Spool record is
-- returned unchanged.
local function spool_restamp(record, now_s, delta)
  local id, attempt, max_attempts, _, rest = spool_parse(record)
  if not id then
    return record
  end
  if delta ~= 0 then
    attempt = spool_int(math.max(0, tonumber(attempt) + delta))
  end
  return spool_record(id, attempt, max_attempts, now_s, rest)
end

-- Moves job `id` from the jobs hash to the ready list, made ready at
-- `now_s` with its attempt unchanged: to the head (the end fetched last)
-- with LPUSH, the default, or to the fetch end with `push` = 'RPUSH'.
-- Returns 1, or 0 when its record is gone. For requeue, promote, release.
local function spool_to_ready(jobs, ready, id, now_s, push)
  local record = redis.call('HGET', jobs, id)
  if not record then
    return 0
  end
  redis.call('HDEL', jobs, id)
  redis.call(push or 'LPUSH', ready, spool_restamp(record, now_s, 0))
  return 1
end

-- Calls `cmd key item…` over the whole list `items`, 1000 items per call:
-- one multi-member command per chunk instead of one per item, and chunks
-- stay under unpack's stack limit. Pairs stay whole (1000 is even).
local function spool_call_chunked(cmd, key, items)
  for c = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, c, math.min(c + 999, #items)))
  end
end

-- A lease is `token|worker id` in the leases hash; the leased record stays
-- in the jobs hash exactly as fetched (its `attempt` does not yet count the
-- run in progress: the script that ends the lease adds it). Keeping records
-- out of Lua-built strings matters: Redis hashes every string a script
-- creates, byte by byte.
local LEASES_GUARD = 'guard entry of the Spool leases hash: keeps it a hash table, not a listpack'

local function spool_lease_token(lease)
  return string.match(lease, '^(%d+)|')
end

local function spool_lease_worker(lease)
  return string.match(lease, '^%d+|(.*)$')
end

-- The ids an operator action applies to: ARGV itself, or with ARGV[1] = '*'
-- the ARGV[2] oldest of `set` (requeue.lua, delete.lua).
local function spool_action_ids(set)
  if ARGV[1] == '*' then
    return redis.call('ZRANGE', set, 0, tonumber(ARGV[2]) - 1)
  end
  return ARGV
end

-- Leaves one token on a queue's wake list: an idle fetcher blocked on it wakes.
local function spool_wake(key)
  redis.call('LPUSH', key, '1')
  redis.call('LTRIM', key, 0, 0)
end

-- Moves the jobs `ids` of sorted set `set` to the ready list (those still
-- in the set), then wakes idle fetchers if any moved. Returns how many.
-- For requeue.lua (operator retry / run now) and promote.lua (due jobs).
local function spool_set_to_ready(set, jobs, ready, wake, ids, now_s)
  local moved = 0
  for _, id in ipairs(ids) do
    if redis.call('ZREM', set, id) == 1 then
      moved = moved + spool_to_ready(jobs, ready, id, now_s)
    end
  end
  if moved > 0 then
    spool_wake(wake)
  end
  return moved
end

-- Longest error text kept in a history entry, in bytes (ERROR_TEXT_MAX_BYTES
-- in wire.rs; a unit test checks they agree).
local SPOOL_ERROR_TEXT_MAX = 8192

-- `text` cut to at most `max` bytes without splitting a UTF-8 character:
-- the cut moves back while the first dropped byte is a continuation byte.
local function spool_cap_text(text, max)
  if #text <= max then
    return text
  end
  local e = max
  while e > 0 do
    local b = string.byte(text, e + 1)
    if b < 128 or b >= 192 then break end
    e = e - 1
  end
  return string.sub(text, 1, e)
end

-- Appends an entry to a job's error history, keeping the newest `cap`; the
-- text is cut to SPOOL_ERROR_TEXT_MAX bytes.
local function spool_push_error(key, id, now, attempt, text, cap)
  text = spool_cap_text(text, SPOOL_ERROR_TEXT_MAX)
  local history = {}
  local raw = redis.call('HGET', key, id)
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then history = decoded end
  end
  history[#history + 1] = {at_ms = now, attempt = attempt, error = text}
  while #history > cap do table.remove(history, 1) end
  redis.call('HSET', key, id, cjson.encode(history))
end

-- Trims a dead set to `cap` jobs, oldest first, with records and histories.
local function spool_cap_dead(dead, jobs, errors, cap)
  local excess = redis.call('ZCARD', dead) - cap
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', dead, 0, excess - 1)) do
      redis.call('ZREM', dead, old)
      redis.call('HDEL', jobs, old)
      redis.call('HDEL', errors, old)
    end
  end
end

-- Adds to a queue's stats hash: the total field and the current minute's.
local function spool_count(stats, field, now, n)
  redis.call('HINCRBY', stats, field .. ':' .. math.floor(now / 60000), n)
  if field == 'p' or field == 'f' then
    redis.call('HINCRBY', stats, field, n)
  end
end
