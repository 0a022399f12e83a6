-- ack.lua: active --ok--> done.
--
-- Fenced and batched: each job is acknowledged only if its lease still
-- carries the caller's token. The lease (which holds the record) and the
-- error history are removed; the processed counter of the current minute
-- (Redis's clock) grows.
--
-- KEYS[1] active  KEYS[2] leases  KEYS[3] errors  KEYS[4] stats
-- ARGV pairs: id, token
-- Returns one integer per pair: 1 acknowledged, 0 lease lost (nothing changed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, done = {}, 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lease = redis.call('HGET', KEYS[2], id)
  if lease and string.match(lease, '^(%d+)|') == token then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
    done = done + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if done > 0 then
  local minute = math.floor(now / 60000)
  redis.call('HINCRBY', KEYS[4], 'p:' .. minute, done)
  redis.call('HINCRBY', KEYS[4], 'p', done)
end
return out
