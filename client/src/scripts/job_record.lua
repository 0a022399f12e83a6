-- job_record.lua: shared prelude, not a script of its own. `scripts/mod.rs`
-- prepends it to every script that creates jobs (enqueue.lua, cron_tick.lua)
-- so the job record is built by exactly one piece of Lua.
--
-- spool_enqueue(ready, wake, scheduled, jobs, now, argv, first, ev, size,
-- followups, shared) builds one record per group of `size` (5 or 6) ARGV values
-- starting at `first` (id, max_attempts, at_ms (0 = none), delay_ms (0 =
-- none), body, and with 6 the job's follow-ups: a JSON array stored in
-- the `followups` hash when not empty, see prelude.lua), or of 2 (id,
-- body) when the jobs share max_attempts, at_ms and delay_ms (`shared`,
-- those three: a bulk's jobs do, and each ARGV value costs Redis about
-- 1,000 instructions before the script runs) and stores it: LPUSH to the
-- ready list when due, else HSET + ZADD into the scheduled set. The fields the
-- scripts own (`id`, `attempt`, `max_attempts`, `enqueued_ms`) are stamped at
-- the front of the JSON object so later scripts can rewrite them with a string
-- match instead of re-encoding the user's args (cjson would turn `[]` into
-- `{}` and round large integers). A body that starts with
-- `{"keep_outcome_ms":N,` (N > 0) asks for the job's outcome to be kept for
-- N ms after it finishes; the record carries it (right after the head),
-- and the scripts that end the job read it there (spool_record_keep). A
-- body that starts with `{"priority":N,` (N in -9 … 9, before any
-- `keep_outcome_ms`) puts the job in the ready list of that priority
-- (prelude.lua, "Ready lists and priorities"); one with `"group":"…",`
-- among those leading fields marks the queue `grouped` (prelude.lua,
-- "Ordered groups").
-- Each job gets an `enqueued` or `scheduled` event when the queue's events
-- (`ev`, see spool_events) are at level all.
-- Returns the list of ids. Call
-- spool_check_groups first: a script that fails halfway keeps what it
-- already wrote, so every group is checked before anything is.

-- nil when every group of `size` (default 5) ARGV values from `first` is
-- well-formed, else an error reply naming the problem (callers pass
-- well-formed groups; the checks guard other producers).
-- The group at `i`: id, max_attempts, at_ms, delay_ms, body (the middle
-- three from `shared` when the jobs share them).
local function spool_job_group(argv, i, shared)
  if shared then
    return argv[i], shared[1], shared[2], shared[3], argv[i + 1]
  end
  return argv[i], argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4]
end

-- Checks cost per job what a bulk enqueue's Lua costs otherwise, so they
-- use plain finds and bytes, and match a pattern once per distinct value
-- (a bulk shares its max_attempts; at_ms and delay_ms are mostly '0').
local function spool_check_groups(argv, first, size, shared)
  size = size or 5
  if (#argv - first + 1) % size ~= 0 then
    return redis.error_reply('ERR spool: job arguments must come in groups of ' .. size)
  end
  local digits = {['0'] = true}
  local function is_digits(s)
    if digits[s] == nil then
      digits[s] = string.match(s, '^%d+$') ~= nil
    end
    return digits[s]
  end
  for i = first, #argv, size do
    local id, max_attempts, at, delay, body = spool_job_group(argv, i, shared)
    if id == '' or string.find(id, '"', 1, true) or string.find(id, '\\', 1, true) then
      return redis.error_reply('ERR spool: job id must be a non-empty string without quotes or backslashes')
    end
    if not is_digits(max_attempts) then
      return redis.error_reply('ERR spool: max_attempts must be a non-negative integer')
    end
    if not is_digits(at) or not is_digits(delay) then
      return redis.error_reply('ERR spool: at_ms and delay_ms must be non-negative integers')
    end
    local open, quote = string.byte(body, 1, 2)
    if open ~= 123 or quote ~= 34 then
      return redis.error_reply('ERR spool: job body must be a non-empty JSON object')
    end
    if size == 6 and argv[i + 5] ~= '' and string.sub(argv[i + 5], 1, 1) ~= '[' then
      return redis.error_reply('ERR spool: follow-ups must be a JSON array or empty')
    end
  end
  return nil
end

-- spool_enqueue for a bulk whose jobs share max_attempts, at and delay
-- (`shared`, as spool_enqueue takes it) and are due now, on a queue whose
-- events are below level all, with no routing fields (priority, rate key,
-- group): each job checked and its record built in one pass over ARGV,
-- then one LPUSH per 1,000 (per job, a bulk's Lua is most of what Redis
-- spends on it: this path costs Redis about 30 % less per job than the
-- general one, docs/development.md "Bulk enqueue in one pass").
-- With `tails` each body comes without its opening `{` (enqueue.lua's
-- '/t'), so no string is cut from it.
-- Returns how many jobs it enqueued, or nil, having written nothing, when
-- the bulk is not such a one or a value is malformed (spool_check_groups
-- then names the problem).
local function spool_enqueue_now(k_ready, k_wake, now, argv, first, ev, shared, tails)
  local max_attempts = shared[1]
  if shared[2] ~= '0' or shared[3] ~= '0' or ev.level >= SPOOL_ALL or
      (#argv - first + 1) % 2 ~= 0 or not string.match(max_attempts, '^%d+$') then
    return nil
  end
  local between = spool_record_between('0', max_attempts, spool_int(now))
  local records, n = {}, 0
  local find, byte, sub = spool_find, spool_byte, spool_sub
  for i = first, #argv, 2 do
    local id, body = argv[i], argv[i + 1]
    local open, quote, third
    if tails then
      open, quote, third = 123, byte(body, 1, 2)
    else
      open, quote, third = byte(body, 1, 3)
    end
    -- A body must be a JSON object with a first field; `p`, `r` or `g`
    -- after its quote may start a routing field.
    if open ~= 123 or quote ~= 34 or third == 112 or third == 114 or third == 103 or
        id == '' or find(id, '"', 1, true) or find(id, '\\', 1, true) then
      return nil
    end
    n = n + 1
    if tails then
      records[n] = '{"id":"' .. id .. between .. body
    else
      records[n] = '{"id":"' .. id .. between .. sub(body, 2)
    end
  end
  if n > 0 then
    spool_call_chunked('LPUSH', k_ready, records)
    spool_wake(k_wake)
  end
  return n
end

local function spool_enqueue(k_ready, k_wake, k_scheduled, k_jobs, now, argv, first, ev, size,
    k_followups, shared)
  size = size or 5
  -- The scheduled set's head, read at the first scheduled job (false:
  -- not read yet; nil: the set is empty).
  local head_ms = false
  local wake = false
  local out = {}
  local batch = {}
  local now_s = spool_int(now)
  local grouped = false
  for i = first, #argv, size do
    local id, max_attempts, at, delay, body = spool_job_group(argv, i, shared)
    if size == 6 and argv[i + 5] ~= '' and k_followups then
      redis.call('HSET', k_followups, id, argv[i + 5])
    end
    local run_at = 0
    if at ~= '0' and tonumber(at) > 0 then
      run_at = tonumber(at)
    elseif delay ~= '0' and tonumber(delay) > 0 then
      run_at = now + tonumber(delay)
    end
    local record = spool_record(id, '0', max_attempts, now_s, string.sub(body, 2))
    -- Routing fields come first in a body (`{"priority"`, `{"rate_key"`,
    -- `{"group"`): one byte tells a body without them (p, r, g).
    local third = string.byte(body, 3)
    local routed = third == 112 or third == 114 or third == 103
    if routed and not grouped and select(3, spool_routing(record)) then
      redis.call('HSET', spool_sibling(k_ready, 'settings'), 'grouped', '1')
      grouped = true
    end
    if ev.level >= SPOOL_ALL then
      spool_event_add(ev, SPOOL_ALL, run_at > now and 'scheduled' or 'enqueued', id,
        '0"' .. (spool_record_type(record) or ''))
    end
    if run_at > now then
      if head_ms == false then
        local head = redis.call('ZRANGE', k_scheduled, 0, 0, 'WITHSCORES')
        head_ms = head[2] and tonumber(head[2]) or nil
      end
      redis.call('HSET', k_jobs, id, record)
      redis.call('ZADD', k_scheduled, run_at, id)
      -- A job due before the scheduler's next planned look: nudge it (an
      -- idle worker hears the wake token; a busy one reads the hint).
      if head_ms == nil or run_at < head_ms then
        head_ms = run_at
        wake = true
      end
      spool_due(ev, run_at)
    elseif routed and string.match(body, '^{"priority":%-?%d,') then
      spool_ready_push(k_ready, record)
      wake = true
    else
      batch[#batch + 1] = record
      if #batch >= 1000 then
        redis.call('LPUSH', k_ready, unpack(batch))
        batch = {}
      end
      wake = true
    end
    out[#out + 1] = id
  end
  if #batch > 0 then
    redis.call('LPUSH', k_ready, unpack(batch))
  end
  spool_events_flush(ev)
  if wake then
    spool_wake(k_wake)
  end
  return out
end

