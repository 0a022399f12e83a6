-- batch_shared.lua: shared prelude of the batch scripts (batch_open,
-- batch_member, batch_seal), not a script of its own.
--
-- A batch (or a chain, which is a batch whose members are its links) lives
-- in its home queue's slot, under `<home>:batch:<uuid>`:
--   (the key itself) HASH: kind (batch or chain), created_ms, keep_ms
--     (how long it is kept once finished), callbacks (a JSON array of
--     follow-up entries, see prelude.lua, whose `on` is success, complete
--     or death), description, the counters done, dead and cancelled,
--     sealed_ms (once every member is enqueued), fired (a letter per
--     callback kind already triggered: d, c, s), first_dead, finished_ms
--   `:members` HASH member id → `state"ms`: pending (ms 0), done, dead or
--     cancelled with the Redis ms of the end that set it
--   `:ids` LIST `id"queue`, in the order the members were added
--   `:results` HASH member id → its result (JSON), for members that keep
--     their outcome (the chord's results)
-- Members report each end through their own queue's outbox (prelude.lua,
-- "Follow-up jobs"); batch_member.lua applies the reports, which may come
-- twice or late: a report older than the member's state is ignored.
-- Callbacks are triggered once each, by the script that sees the batch
-- reach their condition, into the home queue's outbox.
--
-- KEYS of batch_member and batch_seal: [1] batch hash [2] members [3] ids
-- [4] results [5] the home queue's outbox.

-- How long a batch that is not finished is kept after its last change.
local SPOOL_BATCH_IDLE_MS = 30 * 24 * 3600 * 1000

-- Most bytes of results a callback carries (under the default payload
-- limit); past it the callback says `"results_omitted":true` and reads
-- them from the batch (`Client::batch_results`).
local SPOOL_BATCH_RESULTS_MAX = 256 * 1024

-- The kept results as `,"results":[{"id","result"}…]` in member order, ''
-- when no member kept one, or `,"results_omitted":true` past
-- SPOOL_BATCH_RESULTS_MAX.
local function spool_batch_results()
  if redis.call('HLEN', KEYS[4]) == 0 then
    return ''
  end
  local parts, size = {}, 0
  local n = redis.call('LLEN', KEYS[3])
  for from = 0, n - 1, 1000 do
    local ids = {}
    for i, e in ipairs(redis.call('LRANGE', KEYS[3], from, from + 999)) do
      ids[i] = string.match(e, '^[^"]*')
    end
    if #ids > 0 then
      local values = redis.call('HMGET', KEYS[4], unpack(ids))
      for i = 1, #ids do
        if values[i] then
          size = size + #values[i] + #ids[i] + 20
          if size > SPOOL_BATCH_RESULTS_MAX then
            return ',"results_omitted":true'
          end
          parts[#parts + 1] = '{"id":' .. cjson.encode(ids[i]) .. ',"result":' .. values[i] .. '}'
        end
      end
    end
  end
  return ',"results":[' .. table.concat(parts, ',') .. ']'
end

-- Triggers the callbacks `on` of `callbacks` (JSON text): each goes to the
-- home outbox, its body ending with `"batch_callback":{"on", summary,
-- results}` (results: spool_batch_results's text). Returns how many.
local function spool_batch_fire(on, callbacks, summary, results)
  local ok, list = pcall(cjson.decode, callbacks or '[]')
  if not ok or type(list) ~= 'table' then
    return 0
  end
  local n, tail = 0, nil
  for _, f in ipairs(list) do
    if type(f) == 'table' and f[1] == on then
      tail = tail or (',"batch_callback":{"on":"' .. on .. '",' .. summary ..
        (results or '') .. '}}')
      spool_outbox_push(KEYS[5], f, tail)
      n = n + 1
    end
  end
  return n
end

-- After a member's state or the seal changed: triggers the callbacks now
-- due (death at the first dead member; complete once sealed and every
-- member ended; success once every member is done), each once, and sets
-- the keys' expiry (keep_ms once finished). `id` is the batch id. Returns
-- how many callbacks went to the outbox.
local function spool_batch_settle(now, id)
  local m = redis.call('HMGET', KEYS[1], 'done', 'dead', 'cancelled', 'sealed_ms', 'fired',
    'callbacks', 'keep_ms', 'first_dead')
  local done, dead, cancelled = tonumber(m[1]) or 0, tonumber(m[2]) or 0, tonumber(m[3]) or 0
  local fired = m[5] or ''
  local total = redis.call('HLEN', KEYS[2])
  local summary = '"id":' .. cjson.encode(id) .. ',"total":' .. spool_int(total) ..
    ',"done":' .. spool_int(done) .. ',"dead":' .. spool_int(dead) .. ',"cancelled":' ..
    spool_int(cancelled) .. ',"first_dead":' .. (m[8] and cjson.encode(m[8]) or 'null')
  local queued = 0
  if dead > 0 and not string.find(fired, 'd', 1, true) then
    queued = queued + spool_batch_fire('death', m[6], summary, nil)
    fired = fired .. 'd'
  end
  local finished = m[4] and done + dead + cancelled >= total
  if finished then
    local results
    if not string.find(fired, 'c', 1, true) then
      results = spool_batch_results()
      queued = queued + spool_batch_fire('complete', m[6], summary, results)
      fired = fired .. 'c'
    end
    if done >= total and not string.find(fired, 's', 1, true) then
      results = results or spool_batch_results()
      queued = queued + spool_batch_fire('success', m[6], summary, results)
      fired = fired .. 's'
    end
    redis.call('HSET', KEYS[1], 'finished_ms', spool_int(now))
  else
    redis.call('HDEL', KEYS[1], 'finished_ms')
  end
  if fired ~= (m[5] or '') then
    redis.call('HSET', KEYS[1], 'fired', fired)
  end
  local ttl = finished and tonumber(m[7]) or SPOOL_BATCH_IDLE_MS
  for i = 1, 4 do
    redis.call('PEXPIRE', KEYS[i], math.max(ttl, 1000))
  end
  return queued
end
