-- ack.lua: active --ok--> done.
--
-- Fenced and batched: each job is acknowledged only if its lease still
-- carries the caller's token. The record, the lease and the error history
-- are removed; the processed counter of the current minute (Redis's clock)
-- grows. One HMGET checks every fence, then one multi-member delete per key.
--
-- KEYS[1] active  KEYS[2] jobs  KEYS[3] leases  KEYS[4] errors  KEYS[5] stats
-- ARGV pairs: id, token
-- Returns one integer per pair: 1 acknowledged, 0 lease lost (nothing changed).
local now = spool_now()
local out, acked = {}, {}
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
for c = 1, #ids, 1000 do
  local leases = redis.call('HMGET', KEYS[3], unpack(ids, c, math.min(c + 999, #ids)))
  for j, lease in ipairs(leases) do
    local n = c + j - 1
    if lease and spool_lease_token(lease) == ARGV[2 * n] then
      acked[#acked + 1] = ids[n]
      out[n] = 1
    else
      out[n] = 0
    end
  end
end
spool_call_chunked('HDEL', KEYS[3], acked)
spool_call_chunked('HDEL', KEYS[2], acked)
spool_call_chunked('ZREM', KEYS[1], acked)
spool_call_chunked('HDEL', KEYS[4], acked)
if #acked > 0 then
  spool_count(KEYS[5], 'p', now, #acked)
end
return out
