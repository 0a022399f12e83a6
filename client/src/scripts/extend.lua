-- extend.lua: active (leased) --heartbeat--> active with a later deadline.
--
-- Fenced and batched: a lease is extended only if it still carries the
-- caller's token. The new deadline is Redis's clock plus ARGV[1], given to
-- the claims of the leases extended (prelude.lua, "Claims"), once each; a
-- claim's deadline never moves back.
--
-- KEYS[1] active  KEYS[2] leases  KEYS[3] cancels
-- ARGV[1] lease in ms, then pairs: id, token
-- Returns a flat list of triples for the leases that were lost (the worker
-- must stop those runs) or asked to cancel: id, token, and 'taken' (the job
-- is leased with another token now), 'gone' (the job holds no lease:
-- acknowledged, failed, released, reaped or deleted) or 'cancel' (still
-- leased and extended, but its run was asked to cancel: a worker that
-- missed the cancel message learns it here).
local now = spool_now()
local deadline = now + tonumber(ARGV[1])
local lost = {}
local any_cancel = redis.call('EXISTS', KEYS[3]) == 1
-- `ZADD` pairs: each claim once (`seen`).
local moves, seen = {}, {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lease = redis.call('HGET', KEYS[2], id)
  if lease and spool_lease_is(lease, token) then
    -- A lease from before claims has its own member (its job id).
    local claim = spool_lease_claim(lease) or id
    if not seen[claim] then
      seen[claim] = true
      moves[#moves + 1] = deadline
      moves[#moves + 1] = claim
    end
    if any_cancel and redis.call('HGET', KEYS[3], id) == token then
      lost[#lost + 1] = id
      lost[#lost + 1] = token
      lost[#lost + 1] = 'cancel'
    end
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = token
    lost[#lost + 1] = lease and 'taken' or 'gone'
  end
end
if #moves > 0 then
  for c = 1, #moves, 1000 do
    redis.call('ZADD', KEYS[1], 'XX', 'GT', unpack(moves, c, math.min(c + 999, #moves)))
  end
end
return lost
