-- enqueue.lua: app --enqueue--> ready list, or --at/in--> scheduled set.
--
-- Builds each job record from the caller's body, stamping the fields the
-- scripts own (`id`, `attempt`, `max_attempts`, `enqueued_ms`) at the front
-- of the JSON object so later scripts can rewrite them with a string match
-- instead of re-encoding the user's args (cjson would turn `[]` into `{}`
-- and round large integers).
--
-- KEYS[1] ready list        KEYS[2] wake list        KEYS[3] scheduled zset
-- KEYS[4] jobs hash         KEYS[5] idempotency key  (only when ARGV[1] > 0)
-- ARGV[1] idempotency window in ms (0 = no key)
-- ARGV[2..] groups of 5: id, max_attempts, at_ms (0 = none),
--           delay_ms (0 = none), body (JSON object without the fields above)
-- Returns {1, {id...}} when the jobs were created, {0, {existing_id}} when
-- the idempotency key was already taken inside its window.
-- Time comes from Redis (TIME): `delay_ms` is added to Redis's clock, never
-- to the producer's.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local window = tonumber(ARGV[1])
if window > 0 then
  local first = redis.call('GET', KEYS[5])
  if first then
    return {0, {first}}
  end
  redis.call('SET', KEYS[5], ARGV[2], 'PX', window)
end

local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
local head_ms = head[2] and tonumber(head[2]) or nil
local wake = false
local out = {}
local batch = {}
for i = 2, #ARGV, 5 do
  local id, max_attempts, body = ARGV[i], ARGV[i + 1], ARGV[i + 4]
  local at, delay = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  if string.find(id, '["\\]') or id == '' then
    return redis.error_reply('ERR spool: job id must be a non-empty string without quotes or backslashes')
  end
  if not string.match(max_attempts, '^%d+$') then
    return redis.error_reply('ERR spool: max_attempts must be a non-negative integer')
  end
  if string.sub(body, 1, 2) ~= '{"' then
    return redis.error_reply('ERR spool: job body must be a non-empty JSON object')
  end
  local run_at = 0
  if at > 0 then run_at = at elseif delay > 0 then run_at = now + delay end
  local record = '{"id":"' .. id .. '","attempt":0,"max_attempts":' .. max_attempts ..
    ',"enqueued_ms":' .. now .. ',' .. string.sub(body, 2)
  if run_at > now then
    redis.call('HSET', KEYS[4], id, record)
    redis.call('ZADD', KEYS[3], run_at, id)
    -- A job due before the scheduler's next planned look: nudge it.
    if head_ms == nil or run_at < head_ms then
      head_ms = run_at
      wake = true
    end
  else
    batch[#batch + 1] = record
    if #batch >= 1000 then
      redis.call('LPUSH', KEYS[1], unpack(batch))
      batch = {}
    end
    wake = true
  end
  out[#out + 1] = id
end
if #batch > 0 then
  redis.call('LPUSH', KEYS[1], unpack(batch))
end
if wake then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, 0)
end
return {1, out}
