-- ack.lua: active --ok--> done (or cancelled, when the run was asked to).
--
-- Fenced and batched: each job is acknowledged only if its lease still
-- carries the caller's token. The record, the lease, the error history and
-- the timeline are removed; the processed counter of the current minute
-- (Redis's clock) grows. One HMGET checks every fence, then one
-- multi-member delete per key. Only jobs that keep their outcome (`keep`
-- hash), were asked to cancel (`cancels` hash), hold a uniqueness lock,
-- have a timeline or a waiter cost more; a queue without any of those pays
-- one multi-key EXISTS per call.
-- A job that keeps its outcome gets it written (state done, the result the
-- worker sent, its timeline); a run asked to cancel ends cancelled whatever
-- the handler returned.
--
-- KEYS[1] active  KEYS[2] jobs  KEYS[3] leases  KEYS[4] errors  KEYS[5] stats
-- KEYS[6] history KEYS[7] keep  KEYS[8] cancels KEYS[9] waiters
-- KEYS[10] outcome key prefix  KEYS[11] locks
-- ARGV[1] finished channel  ARGV[2] n, then n pairs: id, token; then pairs
-- id, value for jobs whose handler returned one: `r` + the value as JSON,
-- or `e` + why it is not kept (too large), recorded as the outcome's error.
-- Returns one integer per id/token pair: 1 acknowledged, 0 lease lost
-- (nothing changed), 2 ended cancelled.
local now = spool_now()
local q = spool_finishing(6, KEYS[2], KEYS[4], KEYS[5], ARGV[1])
local n = tonumber(ARGV[2])
local out, acked, leases_of = {}, {}, {}
local ids = {}
for i = 1, n do ids[i] = ARGV[1 + 2 * i] end
for c = 1, n, 1000 do
  local leases = redis.call('HMGET', KEYS[3], unpack(ids, c, math.min(c + 999, n)))
  for j, lease in ipairs(leases) do
    local k = c + j - 1
    if lease and spool_lease_token(lease) == ARGV[2 + 2 * k] then
      acked[#acked + 1] = ids[k]
      leases_of[#acked] = lease
      out[k] = 1
    else
      out[k] = 0
    end
  end
end
local cancelled = 0
-- One EXISTS over the side hashes: a queue where no job keeps its outcome,
-- is cancelled, holds a lock, has a timeline or a waiter pays only this.
local extras = #acked > 0 and
  redis.call('EXISTS', KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[11]) > 0
local tracked = extras and redis.call('EXISTS', KEYS[7]) == 1
local cancels = extras and redis.call('EXISTS', KEYS[8]) == 1
local timelines = extras and redis.call('EXISTS', KEYS[6]) == 1
if tracked or cancels then
  local results = {}
  for i = 3 + 2 * n, #ARGV, 2 do results[ARGV[i]] = ARGV[i + 1] end
  local position = {}
  for k = 1, n do position[ids[k]] = k end
  local now_s = spool_int(now)
  local kept = {}
  for a, id in ipairs(acked) do
    local lease = leases_of[a]
    local cancel = cancels and spool_cancel_asked(q, id, lease)
    local keep = not cancel and tracked and redis.call('HGET', KEYS[7], id)
    if cancel or keep then
      local record = redis.call('HGET', KEYS[2], id)
      local _, runs, _, enqueued = spool_head(record or '')
      local attempt = spool_int((tonumber(runs) or 0) + 1)
      if cancel then
        spool_cancelled(q, id, record, lease, attempt, now)
        out[position[id]] = 2
        cancelled = cancelled + 1
      else
        -- The common timeline (enqueued, ran once, done) is built without
        -- reading the timeline hash when the queue has none.
        local stored = timelines and redis.call('HGET', KEYS[6], id)
        local entries = spool_lease_entry(lease, attempt) .. ',[' .. now_s .. ',"done",' .. attempt .. ']'
        local history
        if stored then
          history = spool_history_append(stored, {entries})
        elseif enqueued then
          history = '[[' .. enqueued .. ',"ready",' .. runs .. '],' .. entries .. ']'
        else
          history = '[' .. entries .. ']'
        end
        local value = results[id]
        local result, err
        if value and string.sub(value, 1, 1) == 'r' then
          result = string.sub(value, 2)
        elseif value and string.sub(value, 1, 1) == 'e' then
          err = string.sub(value, 2)
        end
        spool_write_outcome(q, id, 'done', record, history, result, err, keep)
        kept[#kept + 1] = id
      end
    end
  end
  spool_call_chunked('HDEL', KEYS[7], kept)
end
-- Jobs enqueued unique until finished release their lock.
if extras and redis.call('EXISTS', KEYS[11]) == 1 then
  for _, id in ipairs(acked) do
    spool_unlock(KEYS[11], id, nil)
  end
end
spool_call_chunked('HDEL', KEYS[3], acked)
spool_call_chunked('HDEL', KEYS[2], acked)
spool_call_chunked('ZREM', KEYS[1], acked)
spool_call_chunked('HDEL', KEYS[4], acked)
if timelines then
  spool_call_chunked('HDEL', KEYS[6], acked)
end
if #acked > cancelled then
  spool_count(KEYS[5], 'p', now, #acked - cancelled)
end
if extras and redis.call('EXISTS', KEYS[9]) == 1 then
  for k = 1, n do
    if out[k] == 1 then
      spool_announce(q, ids[k], 'done')
    end
  end
end
return out
