-- ack.lua: active --ok--> done (or cancelled, when the run was asked to).
--
-- Fenced and batched: each job is acknowledged only if its lease still
-- carries the caller's token. The record, the lease, the error history and
-- the timeline are removed, and the leases counted off their claims
-- (prelude.lua, "Claims"); the processed counter of the current minute
-- (Redis's clock) grows. One HMGET checks every fence, then one
-- multi-member delete per key. Only jobs that keep their outcome, were
-- asked to cancel (`cancels` hash), hold a uniqueness lock, have a
-- timeline or a waiter cost more; a queue without any of those pays one
-- multi-key EXISTS per call.
-- A job that keeps its outcome (its record says so; the worker read it and
-- sends the outcome's parts) gets it written as state done: when it has no
-- stored timeline (it ran once, the common case) the outcome is the ms from
-- Redis's finish time to its bucket's end, the alias of the worker holding
-- the lease (`workers` hash), and the worker's parts: no record is read;
-- else the worker's parts get the timeline and max_attempts from the
-- record.
-- All go into the outcome buckets with one HSET per bucket. A run asked to
-- cancel ends cancelled whatever the handler returned.
--
-- Each job done gets a `succeeded` event (queue level terminal or all),
-- with the attempt and job type the worker sends.
--
-- KEYS[1] active  KEYS[2] jobs  KEYS[3] leases  KEYS[4] errors  KEYS[5] stats
-- KEYS[6] history KEYS[7] cancels KEYS[8] waiters KEYS[9] outcomes
-- KEYS[10] locks  KEYS[11] events KEYS[12] settings KEYS[13] followups
-- KEYS[14] outbox KEYS[15] workers KEYS[16] wake
-- ARGV[1] finished channel  ARGV[2] n  ARGV[3] '' or 'e': 'e' when a job
-- of the batch ran before (only then may it have an error history to
-- delete)  ARGV[4] b, then b strings: the `succeeded` events' `jobs`
-- fields of the n jobs in order, 100 jobs each (`id"attempt"type…`,
-- attempt counting this run: written as they are when every lease held);
-- then the n ids, then their n tokens (in the same order); then four
-- values per job that keeps its outcome: id, retention (ms), parts, rest:
-- the outcome is '[' .. ms before the end .. ',' .. worker alias .. parts ..
-- rest, the short form of PROTOCOL.md: parts
-- `,"done",attempts,ran_ms,waited_ms,type` and rest `]`, `,result]` or
-- `,null,error]`; then, for jobs with follow-ups (their record says so),
-- `"` and a pair per job: id, rest (as above: what the follow-ups read as
-- the parent's result).
-- A job done gets its follow-ups on success and on completion queued in
-- the outbox (spool_follow_ups).
-- A job done gives back its group's turn (prelude.lua, "Ordered groups").
-- The runs done count as successes for the queue's circuit breaker (when
-- it has one); closing it wakes the queue's idle fetchers.
-- Returns one character per job, as one string: `1` acknowledged, `0`
-- lease lost (nothing changed), `2` ended cancelled. (A string: an array
-- of integers cost Redis a reply value per job and the worker a parse of
-- each.)
local now = spool_now()
local q = spool_finishing(6, KEYS[2], KEYS[4], KEYS[5], ARGV[1])
local n = spool_number(ARGV[2])
local blobs = spool_number(ARGV[4])
-- ARGV[ids_at + k], ARGV[tokens_at + k]: job k's id and token (the ids
-- together: the HMGET of the leases takes them as they came, no copy).
local ids_at = 4 + blobs
local tokens_at = ids_at + n
local argv = ARGV
-- Sized for every job (spool_table): filled in order, never grown.
local out, acked, held = spool_table(n), spool_table(n), 0
-- One EXISTS over the side hashes: a queue where no job is cancelled,
-- holds a lock, has a timeline or a waiter pays only this.
local extras = redis.call('EXISTS', KEYS[6], KEYS[7], KEYS[8], KEYS[10], KEYS[13]) > 0
local cancels = extras and redis.call('EXISTS', KEYS[7]) == 1
local timelines = extras and redis.call('EXISTS', KEYS[6]) == 1
-- Where the follow-ups' section starts (its `"`), or past the end.
local parts_at = ids_at + 2 * n + 1
local results_at = parts_at
while results_at <= #ARGV and ARGV[results_at] ~= '"' do results_at = results_at + 4 end
local tracked = results_at > parts_at
-- Each acknowledged job's lease, kept only for the jobs read again below
-- (cancels, kept outcomes).
local leases_of = (cancels or tracked) and spool_table(n)
-- In a grouped queue, the groups whose turns the acknowledged jobs held
-- (each lease names its job's).
local grouped = q.ev.grouped
local groups, n_groups = grouped and spool_table(n) or {}, 0
-- The leases ended per claim: a batch's leases are mostly of one claim,
-- so each lease is first compared with the previous one's claim (one
-- plain find, no new string); only a lease of another claim has its claim
-- cut from it.
local claim_counts, claim, claim_n = {}, nil, 0
for c = 1, n, 1000 do
  local leases = redis.call('HMGET', KEYS[3], unpack(argv, ids_at + c, ids_at + math.min(c + 999, n)))
  -- A numeric loop: each step of ipairs is a C call. spool_lease_is and
  -- spool_lease_group are written out (a call costs as much as a C call).
  for j = 1, #leases do
    local lease, k = leases[j], c + j - 1
    local token = argv[tokens_at + k]
    local bar = #token + 1
    if lease and spool_find(lease, token, 1, true) == 1 and spool_byte(lease, bar) == 124 then
      held = held + 1
      acked[held] = argv[ids_at + k]
      if leases_of then
        leases_of[held] = lease
      end
      local at = bar + 1
      if claim and spool_find(lease, claim, at, true) == at and
          (#lease == at + #claim - 1 or spool_byte(lease, at + #claim) == 124) then
        claim_n = claim_n + 1
      else
        if claim then
          claim_counts[claim] = (claim_counts[claim] or 0) + claim_n
        end
        claim, claim_n = spool_lease_claim(lease, at), 1
      end
      -- The group is everything after the third `|`: the one right after
      -- the claim the lease was just matched with.
      if grouped and claim and #lease > at + #claim then
        n_groups = n_groups + 1
        groups[n_groups] = spool_sub(lease, at + #claim + 1)
      end
      out[k] = '1'
    else
      out[k] = '0'
    end
  end
end
-- Job k's `attempt"type`, from the event strings (read only when needed).
local tails
local function tail_of(k)
  if not tails then
    tails = {}
    for b = 1, blobs do
      for _, attempt, job_type in string.gmatch(ARGV[4 + b] .. '"', '([^"]*)"([^"]*)"([^"]*)"') do
        tails[#tails + 1] = attempt .. '"' .. job_type
      end
    end
  end
  return tails[k] or '"'
end
local cancelled = 0
local positions
-- The index of job `id` among the pairs, or nil.
local function position_of(id)
  if not positions then
    positions = {}
    for k = 1, n do positions[argv[ids_at + k]] = k end
  end
  return positions[id]
end
if held > 0 and (tracked or cancels) then
  local parts = {}
  for i = parts_at, results_at - 1, 4 do parts[ARGV[i]] = i end
  local now_s = spool_int(now)
  local batch = {}
  for a, id in ipairs(acked) do
    local lease = leases_of[a]
    local cancel = cancels and spool_cancel_asked(q, id, lease)
    local p = not cancel and parts[id]
    local keep = p and tonumber(ARGV[p + 1])
    local stored = keep and timelines and redis.call('HGET', KEYS[6], id)
    if keep and not stored then
      local ends, opening = spool_outcome_end(keep, now)
      spool_outcome_add(batch, ends, id, opening .. spool_worker_alias(KEYS[15], lease) ..
        ARGV[p + 2] .. ARGV[p + 3])
    elseif cancel or keep then
      local record = redis.call('HGET', KEYS[2], id)
      local runs, max_attempts = select(2, spool_head(record or ''))
      local attempt = spool_int((tonumber(runs) or 0) + 1)
      if cancel then
        spool_cancelled(q, id, record, lease, attempt, now)
        out[position_of(id)] = '2'
        cancelled = cancelled + 1
      else
        local history = spool_history_append(stored, {spool_lease_entry(lease, attempt),
          spool_hist_entry(now_s, 'done', attempt)})
        -- rest, without its `]`, padded to the result and error places.
        local rest = string.sub(ARGV[p + 3], 1, -2)
        if rest == '' then
          rest = ',null,null'
        elseif string.sub(rest, 1, 6) ~= ',null,' then
          rest = rest .. ',null'
        end
        local ends, opening = spool_outcome_end(keep, now)
        spool_outcome_add(batch, ends, id, opening .. 'null' .. ARGV[p + 2] .. rest .. ',' ..
          history .. ',' .. (max_attempts or 'null') .. ']')
      end
    end
  end
  spool_outcome_write(q, batch)
end
-- Jobs enqueued unique until finished release their lock.
if extras and redis.call('EXISTS', KEYS[10]) == 1 then
  for _, id in ipairs(acked) do
    spool_unlock(KEYS[10], id, nil)
  end
end
spool_call_chunked('HDEL', KEYS[3], acked)
spool_call_chunked('HDEL', KEYS[2], acked)
if claim then
  claim_counts[claim] = (claim_counts[claim] or 0) + claim_n
end
spool_claims_end(KEYS[1], claim_counts)
if ARGV[3] ~= '' then
  spool_call_chunked('HDEL', KEYS[4], acked)
end
if timelines then
  spool_call_chunked('HDEL', KEYS[6], acked)
end
if #acked > cancelled then
  spool_count(KEYS[5], 'p', now, #acked - cancelled)
  if q.ev.breaker and spool_breaker_note(q.ev, now, #acked - cancelled, 0) then
    spool_wake(KEYS[16])
  end
end
-- Follow-ups of the jobs done, with the results the worker sent. A queue
-- where no job has follow-ups pays nothing more (the EXISTS above).
if extras and redis.call('EXISTS', KEYS[13]) == 1 then
  local results = {}
  for i = results_at + 1, #ARGV - 1, 2 do
    local rest = ARGV[i + 1]
    if #rest > 1 and string.sub(rest, 1, 6) ~= ',null,' then
      results[ARGV[i]] = string.sub(rest, 2, -2)
    end
  end
  for k = 1, n do
    if out[k] == '1' then
      local attempts, job_type = string.match(tail_of(k), '^(%d*)"(.*)$')
      local id = argv[ids_at + k]
      spool_follow_ups(q, id, 'done', results[id], nil, attempts,
        job_type ~= '' and job_type or nil, now)
    end
  end
end
if extras and redis.call('EXISTS', KEYS[8]) == 1 then
  for k = 1, n do
    if out[k] == '1' then
      spool_announce(q, argv[ids_at + k], 'done')
    end
  end
end
if grouped then
  if cancelled > 0 then
    -- Only the jobs done give their turns back here (spool_cancelled gave
    -- the cancelled ones').
    groups, n_groups = {}, 0
    for a = 1, held do
      local group = spool_lease_group(leases_of[a])
      if group and out[position_of(acked[a])] == '1' then
        n_groups = n_groups + 1
        groups[n_groups] = group
      end
    end
  end
  spool_group_leave(KEYS[1], groups, q.ev)
end
if q.ev.level >= SPOOL_TERMINAL then
  if #acked == n and cancelled == 0 then
    -- Every job succeeded: the worker's strings are the entries.
    for b = 1, blobs do
      spool_event_write(q.ev, 'succeeded', {ARGV[4 + b]})
    end
  else
    for k = 1, n do
      if out[k] == '1' then
        spool_event_add(q.ev, SPOOL_TERMINAL, 'succeeded', argv[ids_at + k], tail_of(k))
      end
    end
    spool_events_flush(q.ev)
  end
end
return table.concat(out)
