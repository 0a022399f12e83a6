-- fetch.lua: ready --fetch+lease--> active (leased).
--
-- Claims up to ARGV[1] jobs from the fetch end of the ready list (of the
-- ready lists by priority, highest first, when the queue has prioritized
-- jobs: prelude.lua, "Ready lists and priorities") and gives
-- each a fencing token (a per-queue counter, so tokens never repeat) and a
-- lease deadline on Redis's clock. The record is kept unchanged in the jobs
-- hash so the reaper can put it back if the worker dies; its `attempt` counts
-- runs before this one (the worker adds 1; ack/fail/reap account for it).
-- The call's leases are one claim (prelude.lua, "Claims"): one member of
-- `active` with the deadline, and the claim's count in `claims`.
-- This is the hot path: per batch, two multi-member writes and the
-- claim's two, and no Lua string is built from a record.
-- A list entry that is not a Spool record (raw garbage, foreign JSON), or a
-- record larger than the worker's payload limit (written raw by another
-- producer), goes to the dead set at once with a readable error; it never
-- reaches a handler, and a huge one is never sent over the network.
-- Events: `started` per job (queue level all), `dead` per buried entry.
-- A queue with a global concurrency limit (`concurrency` in its settings
-- hash) gets at most that many leases that have not expired, across every
-- worker: the claim is cut to the room left, and a full queue returns
-- nothing without passing the wake-up on (its fetchers wait for a token or
-- their idle poll). The leases of an expired claim (its worker died) free
-- their places at once, before the reaper runs.
-- A queue with a rate limit (`rate`) gets at most the jobs its token bucket
-- holds (spool_rate_room); one with a circuit breaker (`breaker`) gets none
-- while it is open and only its probes while half-open. Either returns how
-- long the queue is held, so fetchers skip it until then without a command.
--
-- KEYS[1] ready  KEYS[2] active  KEYS[3] jobs  KEYS[4] leases  KEYS[5] fence
-- KEYS[6] paused KEYS[7] dead    KEYS[8] errors KEYS[9] wake   KEYS[10] stats
-- KEYS[11] history KEYS[12] locks KEYS[13] events KEYS[14] settings
-- ARGV[1] max jobs to claim  ARGV[2] lease in ms  ARGV[3] worker id
-- ARGV[4] largest record accepted, in bytes  ARGV[5] (optional) the
-- pick-up latency, in ms, summed over the jobs of this worker's previous
-- claim: the worker reads each record's enqueued_ms (wire.rs), so this
-- script parses no more of a record than its id (spool_record_id); a
-- record whose head is bad otherwise is leased and sent to the dead set by
-- the worker.
-- A queue with a per-key rate limit (`key_rate`) leases a job whose key is
-- over its budget later: it goes to the scheduled set for its key's next
-- start (spool_key_gate); the reply counts them so the worker's scheduler
-- looks at once.
-- A grouped queue's jobs holding their group's turn (`ready:turn`) come
-- first; a grouped job popped from the other lists takes a free turn of
-- its group or waits in the group's list, and its lease names the group
-- (prelude.lua, "Ordered groups").
-- Returns {now_ms, hold_ms, deferred, due_ms, 0, token1, record1, token2,
-- record2, ...}, each token an integer, or {now_ms, hold_ms, deferred,
-- due_ms, token1, record1, record2, ...} when the tokens are token1,
-- token1 + 1, …: hold_ms is 0, or how long the
-- queue's rate limit or open breaker holds it (no job is fetched from it
-- meanwhile); deferred the jobs sent to wait for their key's next start;
-- due_ms the queue's due hint (prelude.lua, "The due hint"), 0 when none.
local now = spool_now()
-- Counted whatever this call claims (even nothing, or on a paused queue).
local owed = tonumber(ARGV[5] or '')
if owed and owed > 0 then
  spool_count(KEYS[10], 'fl', now, owed)
end
-- One EXISTS for the pause flag and the uniqueness locks (KEYS[12], when
-- the caller passes it): neither exists, the common case, costs one call.
-- Without a locks key a count above 0 is the pause flag; with one, a
-- second EXISTS tells which (only then).
local flagged = KEYS[12] and redis.call('EXISTS', KEYS[6], KEYS[12]) or redis.call('EXISTS', KEYS[6])
if flagged > 0 and (not KEYS[12] or redis.call('EXISTS', KEYS[6]) == 1) then
  return {now, 0, 0, 0}
end
local has_locks = flagged > 0
local ev = spool_events(KEYS[13], KEYS[14])
local want = spool_number(ARGV[1])
if ev.breaker then
  local allowed, hold = spool_breaker_gate(ev, now)
  if allowed == 0 then
    return {now, hold, 0, ev.due or 0}
  end
  want = math.min(want, allowed or want)
end
-- With a limit: the places left, and whether this claim may fill them.
local room
if ev.concurrency then
  room = ev.concurrency - spool_leases_live(KEYS[2], KEYS[4], now)
  if room <= 0 then
    return {now, 0, 0, ev.due or 0}
  end
  want = math.min(want, room)
end
local rate_room, tat, interval
if ev.rate then
  local hold
  rate_room, tat, hold, interval = spool_rate_room(ev, now)
  if rate_room == 0 then
    return {now, hold, 0, ev.due or 0}
  end
  want = math.min(want, rate_room or want)
end
local items, more
-- A grouped queue's jobs holding their group's turn come first (the first
-- `turned` items).
local turned = 0
if ev.grouped then
  items = redis.call('RPOP', spool_turn_list(KEYS[1]), spool_int(want))
  turned = items and #items or 0
  more = turned == want
end
if turned < want then
  local rest
  if ev.priorities then
    rest, more = spool_ready_pop(KEYS[1], want - turned)
  else
    rest = redis.call('RPOP', KEYS[1], spool_int(want - turned))
    -- Fewer than asked: the list is empty now (no LLEN needed below).
    more = rest ~= false and #rest == want - turned
  end
  if rest and turned > 0 then
    for _, record in ipairs(rest) do
      items[#items + 1] = record
    end
  elseif rest then
    items = rest
  end
end
if not items then
  return {now, 0, 0, ev.due or 0}
end
local last = redis.call('INCRBY', KEYS[5], spool_int(#items))
local deadline = spool_int(now + spool_number(ARGV[2]))
-- A lease is `token|worker|start_ms`: the start is the run's timeline entry.
local lease_tail = '|' .. ARGV[3] .. '|' .. spool_int(now)
-- Item i's token is first_token + i - 1 (buried and held-back items
-- take theirs too).
local first_token = last - #items + 1
local claimed, bad, deferred = 0, 0, 0
-- Sized for every item (spool_table): the loop below fills them in order.
local job_args, lease_args = spool_table(2 * #items), spool_table(2 * #items + 2)
-- The items not claimed (buried or held back), by index; empty in the
-- common case.
local buried = {}
-- How many values each of the first two holds.
local pairs_at = 0
local max_bytes = spool_number(ARGV[4])

-- Moves entry `record` to the dead set under `id` with error `why`.
local function bury(id, record, why)
  redis.call('HSET', KEYS[3], id, record)
  spool_push_error(KEYS[8], id, now, 0, why, 1)
  redis.call('HSET', KEYS[11], id, '[' .. spool_hist_entry(spool_int(now), 'dead', 0, '', why) .. ']')
  redis.call('ZADD', KEYS[7], now, id)
  spool_event(ev, SPOOL_TERMINAL, 'dead', id, spool_record_type(record), '0', why)
  bad = bad + 1
end

-- Jobs held back (prelude.lua): deferred to their rate key's next start,
-- or waiting for their group's turn; `groups` maps the index of each job
-- that holds a turn, or asks for one, to its group (its lease names it).
-- Only queues with per-key rate limits or groups look; they keep each
-- record's id (`ids`, by index) and mark a record that ends right after
-- its head (`cut`: sent to the dead set as unparsable).
local held_back, groups, ids, cut = {}, {}, nil, {}
if ev.key_rate or ev.grouped then
  ids, groups = spool_table(#items), spool_table(#items)
  local key_rate = ev.key_rate
  -- The gated jobs' indexes and groups: while they are the first jobs of
  -- the batch (the common case), `groups` itself, with no list built.
  local gated, gated_groups, n_gated = nil, groups, 0
  for i = 1, #items do
    local record = items[i]
    local id, _, at, group = spool_record_id(record, true)
    ids[i] = id
    -- Without a head end (not Spool's head after the id) it is leased as
    -- on a plain queue, for the worker to send to the dead set under its
    -- own id.
    local size = #record
    if at and at > size then
      cut[i] = true
    elseif at and size <= max_bytes then
      if not group then
        local _, _, routed = spool_routing(record, at)
        group = routed
      end
      if group then
        groups[i] = group
      end
      if key_rate and not spool_key_gate(ev, KEYS[1], KEYS[3], id, record, now, at) then
        held_back[i] = true
        deferred = deferred + 1
        -- It keeps the turn it holds while it waits; one popped from the
        -- other lists asks for none.
        if group and i <= turned then
          spool_group_hold(KEYS[1], id, group)
        end
        groups[i] = nil
      elseif group and i > turned then
        n_gated = n_gated + 1
        if gated or n_gated ~= i then
          if not gated then
            gated, gated_groups = {}, {}
            for k = 1, n_gated - 1 do
              gated[k], gated_groups[k] = k, groups[k]
            end
          end
          gated[n_gated] = i
          gated_groups[n_gated] = group
        end
      end
    end
  end
  if n_gated > 0 then
    spool_group_gate(ev, KEYS[1], items, n_gated, gated, gated_groups, held_back)
  end
end

local started = ev.level >= SPOOL_ALL
-- Each lease's token as a decimal string without a printf per job
-- (string.format costs about as much as the rest of the job's Lua): the
-- last two digits come from a table, the rest once per hundred.
local hundreds, hundreds_of
for i = 1, #items do
  local record = items[i]
  local id
  if ids then
    id = ids[i]
  else
    id = spool_record_id(record)
  end
  if id and #record > max_bytes then
    buried[i] = true
    bury(id, record, 'payload too large: the record is ' .. spool_int(#record) ..
      ' bytes, over the worker\'s limit of ' .. ARGV[4] .. ' bytes (max_payload_bytes); ' ..
      'it was moved here unchanged without running')
  elseif held_back[i] then
    -- It waits (in the scheduled set, or in its group's list).
  elseif id and not cut[i] then
    -- One string per lease (token, worker, start and maybe the group);
    -- the token goes back as an integer.
    local token = first_token + i - 1
    local low = token % 100
    local group = groups[i]
    local lease
    if token < 100 then
      lease = spool_int(token) .. lease_tail
      lease = group and lease .. '|' .. group or lease
    else
      if token - low ~= hundreds_of then
        hundreds_of = token - low
        hundreds = spool_int(hundreds_of / 100)
      end
      lease = group and hundreds .. SPOOL_TWO_DIGITS[low] .. lease_tail .. '|' .. group or
        hundreds .. SPOOL_TWO_DIGITS[low] .. lease_tail
    end
    job_args[pairs_at + 1] = id
    job_args[pairs_at + 2] = record
    lease_args[pairs_at + 1] = id
    lease_args[pairs_at + 2] = lease
    pairs_at = pairs_at + 2
    claimed = claimed + 1
    if started then
      -- The type right after the head, where Spool's producers write it
      -- (spool_record_type also looks after `keep_outcome_ms`).
      local _, runs, _, _, head_end = spool_head(record)
      spool_event_add(ev, SPOOL_ALL, 'started', id, spool_int((tonumber(runs) or 0) + 1) .. '"' ..
        (head_end and string.match(record, '^"type":"([^"\\]*)"', head_end) or
          spool_record_type(record) or ''))
    end
  else
    buried[i] = true
    bury('invalid-' .. spool_int(now) .. '-' .. spool_int(first_token + i - 1), record,
      'unparsable payload: the ready list held an entry that is not a Spool job record ' ..
      '(a JSON object starting with {"id":..,"attempt":..,"max_attempts":..,"enqueued_ms":..}); ' ..
      'it was moved here unchanged')
  end
end
if claimed > 0 then
  -- A guard field (`"` can never be a job id) whose value is longer than
  -- hash-max-listpack-value keeps the leases hash a real hash table: as a
  -- listpack every HMGET/HDEL of a busy queue would scan it linearly
  -- (prelude.lua, SPOOL_HASH_GUARD). It rides along in the batch's write
  -- (rewritten unchanged) instead of a call of its own (a call costs
  -- about 6,000 instructions).
  lease_args[pairs_at + 1] = '"'
  lease_args[pairs_at + 2] = SPOOL_HASH_GUARD
end
spool_call_chunked('HSET', KEYS[3], job_args)
spool_call_chunked('HSET', KEYS[4], lease_args)
if claimed > 0 then
  -- The claim (prelude.lua, "Claims"): its name is the leases' tail.
  local claim = spool_sub(lease_tail, 2)
  local claims = spool_sibling(KEYS[2], 'claims')
  -- A new member of `active` is a new claim (the two are made and dropped
  -- together).
  if redis.call('ZADD', KEYS[2], 'NX', deadline, claim) == 1 then
    redis.call('HSET', claims, claim, spool_int(claimed))
  else
    -- The same worker claimed from this queue in the same ms: one claim.
    redis.call('HINCRBY', claims, claim, claimed)
    redis.call('ZADD', KEYS[2], 'GT', deadline, claim)
  end
end
-- Jobs enqueued unique until started release their lock now. A queue
-- without locks pays one EXISTS.
if claimed > 0 and has_locks then
  for i = 1, #job_args, 2 do
    spool_unlock(KEYS[12], job_args[i], 's')
  end
end
spool_events_flush(ev)
if claimed > 0 then
  spool_count(KEYS[10], 'fc', now, claimed)
  if rate_room then
    spool_rate_take(ev, tat, interval, claimed)
  end
  spool_breaker_probes(ev, claimed)
end
if bad > 0 then
  spool_count(KEYS[10], 'f', now, bad)
  -- A job too large to run gives back the turn it held.
  if ev.grouped then
    local freed = {}
    for i = 1, turned do
      local group = #items[i] > max_bytes and select(3, spool_routing(items[i]))
      freed[#freed + 1] = group or nil
    end
    spool_group_leave(KEYS[1], freed, ev)
  end
end
-- Chain the wake-up: if jobs remain, another idle fetcher should come too
-- (unless this claim filled the queue's places: it would find none).
-- (`more`: a list gave all that was asked of it, so it may hold more; a
-- wake-up it did not need costs an idle fetcher one empty claim.)
if more and (not room or claimed < room) and (not rate_room or claimed < rate_room) then
  spool_wake(KEYS[9])
end
-- Claimed records with consecutive tokens (nothing buried or held back)
-- go back as they came from the list, after the first token: one reply
-- value per job, and no Lua string is built from them (Redis's Lua hashes
-- every byte of every string it creates, so joining them would cost more
-- than the claim itself).
local due = ev.due or 0
if claimed > 0 and claimed == #items then
  -- One unpack fills the reply (a loop would cost three opcodes a job and
  -- grow the table step by step); within what unpack takes at once.
  if claimed <= 1000 then
    return {now, 0, deferred, due, first_token, unpack(items)}
  end
  local out = {now, 0, deferred, due, first_token}
  for k = 1, claimed do
    out[k + 5] = items[k]
  end
  return out
end
local out = {now, 0, deferred, due, 0}
for i = 1, #items do
  if not buried[i] and not held_back[i] then
    out[#out + 1] = first_token + i - 1
    out[#out + 1] = items[i]
  end
end
return out
