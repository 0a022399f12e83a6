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
local now = spool_now()
local out, done = {}, 0
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
-- One HMGET to check every fence, then one multi-member delete per key.
local acked = {}
for c = 1, #ids, 1000 do
  local chunk = {unpack(ids, c, math.min(c + 999, #ids))}
  local leases = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j, lease in ipairs(leases) do
    local n = c + j - 1
    if lease and spool_lease_token(lease) == ARGV[2 * n] then
      acked[#acked + 1] = ids[n]
      out[n] = 1
      done = done + 1
    else
      out[n] = 0
    end
  end
end
for c = 1, #acked, 1000 do
  local chunk = {unpack(acked, c, math.min(c + 999, #acked))}
  redis.call('HDEL', KEYS[2], unpack(chunk))
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[3], unpack(chunk))
end
if done > 0 then
  spool_count(KEYS[4], 'p', now, done)
end
return out
