-- prelude.lua: helpers shared by every script; `scripts/mod.rs` prepends
-- this file, so each piece of Lua below exists once in the source.
--
-- The job record's first four fields are owned by the scripts and always
-- written first, in this order: {"id":"…","attempt":N,"max_attempts":N,
-- "enqueued_ms":N, … — so they can be read and rewritten with an anchored
-- string match instead of re-encoding the producer's args (cjson would turn
-- `[]` into `{}` and round large integers).

-- Redis's clock in ms: the one clock (DESIGN invariant 3).
local function spool_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Memo tables (SPOOL_MEMO_*): the only prelude values a script writes to.
-- Each maps a key to what a pure function computes from that key alone, so
-- keeping one across calls changes no result: run as Redis functions
-- (scripts/mod.rs, "Functions") they are made once per server and last,
-- run by EVALSHA they are made again each call. Each holds a bounded
-- number of entries.

-- An integer as a decimal string. Scripts pass strings, not Lua numbers, to
-- redis.call and to concatenations: Redis converts a number argument with
-- printf's `%.17g` and Lua a concatenated one with `%.14g` (about 2,200
-- instructions each, a tenth of a small script call's own work), where
-- `%d` costs half that. Whole numbers below SPOOL_INT_CACHED (a batch's
-- size, how many jobs a call claimed or ended) are formatted once: at
-- most 1,024 short strings (after 200,000 jobs drained, Redis's
-- `used_memory_vm_functions` read 6 KB more than without the memos).
local SPOOL_INT_CACHED = 1024
local SPOOL_MEMO_INT_TEXT = {}
local function spool_int(n)
  local text = SPOOL_MEMO_INT_TEXT[n]
  if text then
    return text
  end
  text = string.format('%d', n)
  -- Whole numbers from 0 below the bound (a string of digits is not one:
  -- it differs from its own remainder's number).
  if n % SPOOL_INT_CACHED == n and n % 1 == 0 then
    SPOOL_MEMO_INT_TEXT[n] = text
  end
  return text
end

-- The number a decimal string stands for (tonumber), for the arguments a
-- worker sends again and again (a batch's size, the lease in ms, the
-- payload limit): tonumber goes through strtod, about 1,000 instructions,
-- where a string seen before is a table lookup. The first
-- SPOOL_MEMO_NUMBERS_MAX strings are kept.
local SPOOL_MEMO_NUMBERS_MAX = 1024
local SPOOL_MEMO_NUMBERS = {}
-- How many SPOOL_MEMO_NUMBERS holds (in a table, so the count lasts as
-- long as the memo).
local SPOOL_MEMO_NUMBERS_KEPT = {0}
local function spool_number(text)
  local n = SPOOL_MEMO_NUMBERS[text]
  if n then
    return n
  end
  n = tonumber(text)
  if n and SPOOL_MEMO_NUMBERS_KEPT[1] < SPOOL_MEMO_NUMBERS_MAX then
    SPOOL_MEMO_NUMBERS[text] = n
    SPOOL_MEMO_NUMBERS_KEPT[1] = SPOOL_MEMO_NUMBERS_KEPT[1] + 1
  end
  return n
end

-- An empty table with room for `n` values in its array part: filling it
-- in order (t[1], t[2], …) then never grows it. Lua 5.1 gives a script no
-- lua_createtable, and a table filled from `{}` is reallocated and
-- rehashed at each power of two (at c200 growing tables cost about
-- 1,500 instructions a job, callgrind's `newkey`; sizing fetch's and
-- ack's own at once halved that);
-- `{unpack(t, 1, n)}` sizes it at once. `#t`
-- reads the filled part. Up to SPOOL_TABLE_MAX (what one call may push on
-- Lua's stack is bounded); a larger one starts empty.
local SPOOL_TABLE_MAX = 4000
local SPOOL_NONE = {}
local function spool_table(n)
  if n > SPOOL_TABLE_MAX then
    return {}
  end
  return {unpack(SPOOL_NONE, 1, n)}
end

-- '00' … '99' by value: fetch.lua writes a lease's token as its hundreds
-- (one spool_int per hundred tokens) and these two digits.
local SPOOL_TWO_DIGITS = {[0] = '00',
  '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12',
  '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24',
  '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36',
  '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48',
  '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60',
  '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72',
  '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84',
  '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96',
  '97', '98', '99'}

-- id, attempt, max_attempts, enqueued_ms and the position where the rest of
-- the object starts — or nil for an entry that is not a Spool record.
local function spool_head(record)
  return string.match(record,
    '^{"id":"([^"\\]+)","attempt":(%d+),"max_attempts":(%d+),"enqueued_ms":(%d+),()')
end

-- The string functions of the per-job paths (fetch, ack and the record
-- and lease readers they call), as locals: each call then costs a global
-- and a field lookup less. A call into C is what a job's Lua costs most
-- (about 40 ns each, where an opcode is 1 or 2).
local spool_find, spool_sub, spool_byte = string.find, string.sub, string.byte
local spool_match = string.match

-- The id of `record` and the position of its closing quote, or nil: the
-- fetch path's check, a tenth of spool_head's cost (Lua's pattern matcher
-- costs about 6,000 instructions on a head; plain finds use memchr). It
-- reads only `{"id":"<id>"` (no `\` in the id, as spool_head); the worker
-- checks the rest of the head (wire.rs) and sends a record that fails to
-- the dead set.
-- With `head_end` (the fetch path of queues that read a record's routing
-- fields: groups, per-key rate limits) two more values: where the head
-- ends (spool_head's last value) and the group when it comes right after
-- the head (else nil: then spool_routing reads the routing fields from
-- there); both nil when no `,"enqueued_ms":` and comma follow the id (the
-- record is then leased as on a plain queue, for the worker to send to
-- the dead set). Plain finds for those two and one anchored match for the
-- group (faster here than the four finds it would take). One function for
-- both: a call costs about what a call into C does.
local function spool_record_id(record, head_end)
  -- A plain find that stops at once on a record (a sub would make a
  -- string to compare: hashed, looked up); only an entry that is not a
  -- record is scanned to its end.
  if spool_find(record, '{"id":"', 1, true) ~= 1 then
    return nil
  end
  local close = spool_find(record, '"', 8, true)
  if not close or close == 8 then
    return nil
  end
  local escape = spool_find(record, '\\', 8, true)
  if escape and escape < close then
    return nil
  end
  local id = spool_sub(record, 8, close - 1)
  if not head_end then
    return id, close
  end
  local field = spool_find(record, ',"enqueued_ms":', close + 1, true)
  local comma = field and spool_find(record, ',', field + 15, true)
  if not comma then
    return id, close
  end
  return id, close, comma + 1, spool_match(record, '^"group":"([^"\\]*)",', comma + 1)
end

-- id, attempt, max_attempts, enqueued_ms, rest — or nil. The pattern stops at
-- a position capture and the rest is cut with string.sub: matching `(.+)$`
-- would walk the whole record char by char.
local function spool_parse(record)
  local id, attempt, max_attempts, enqueued, at = spool_head(record)
  if not id or at > #record then
    return nil
  end
  return id, attempt, max_attempts, enqueued, string.sub(record, at)
end

-- What a record holds between its id and the rest of the object: the other
-- script-owned fields (a bulk's jobs share it: spool_enqueue_now).
local function spool_record_between(attempt, max_attempts, enqueued_ms)
  return '","attempt":' .. attempt .. ',"max_attempts":' .. max_attempts ..
    ',"enqueued_ms":' .. enqueued_ms .. ','
end

-- Builds a record from its script-owned fields and the rest of the object.
local function spool_record(id, attempt, max_attempts, enqueued_ms, rest)
  return '{"id":"' .. id .. spool_record_between(attempt, max_attempts, enqueued_ms) .. rest
end

-- The record made ready again at `now_s` (a string from spool_int) with its
-- attempt shifted by `delta`; an entry that is not a Spool record is
-- returned unchanged.
local function spool_restamp(record, now_s, delta)
  local id, attempt, max_attempts, _, rest = spool_parse(record)
  if not id then
    return record
  end
  if delta ~= 0 then
    attempt = spool_int(math.max(0, tonumber(attempt) + delta))
  end
  return spool_record(id, attempt, max_attempts, now_s, rest)
end

-- Ready lists and priorities ------------------------------------------------
-- A job enqueued with a priority other than 0 (-9 … 9) carries
-- `"priority":N,` right after its head and waits in a list of its own,
-- `<ready>:p<N>`, instead of the plain ready list. fetch.lua takes p9 … p1,
-- then the plain list, then p-1 … p-9, each first in, first out. The first
-- such job sets the queue's settings field `priorities`, which tells
-- fetch.lua to look at those lists: a queue that never had one pays
-- nothing. Every key of a queue is `<prefix><name>` (keys.rs), so the level
-- lists and the settings hash are named from the ready key (the prefix
-- ends with the queue's `}:`; a key name has no colon).
local SPOOL_PRIORITY_MAX = 9

-- The key `name` of the queue `key` (a plain queue key: `<prefix><name>`)
-- belongs to.
local spool_prefixes = {}
local function spool_sibling(key, name)
  local prefix = spool_prefixes[key]
  if not prefix then
    prefix = string.match(key, '^(.*:)[^:]*$')
    spool_prefixes[key] = prefix
  end
  return prefix .. name
end

-- The ready list of priority `level` (the plain list for 0).
local function spool_ready_list(ready, level)
  if level == 0 then
    return ready
  end
  return ready .. ':p' .. level
end

-- The list of a grouped queue's jobs that hold their group's turn and wait
-- only for a worker (prelude.lua, "Ordered groups"); fetched first.
local function spool_turn_list(ready)
  return ready .. ':turn'
end

-- A record's routing fields, each optional, right after its head where
-- Spool's producers write them, in this order: `"priority":N,` (-9 … 9),
-- `"rate_key":"…",`, `"group":"…",`. Returns the priority (0 when absent),
-- the rate key and the group (or nil), and where the rest starts; `at` is
-- where the head ends (spool_head's last value) when the caller has it.
-- Nothing but 0 and nils for an entry that is not a Spool record.
local function spool_routing(record, at)
  if not at then
    at = select(5, spool_head(record))
    if not at then
      return 0, nil, nil, nil
    end
  end
  -- The byte after the field's quote picks the one field that may start
  -- here: each anchored match is one call into C.
  local priority, key, group, after
  local b = spool_byte(record, at + 1)
  if b == 112 then -- p
    priority, after = spool_match(record, '^"priority":(%-?%d),()', at)
    at = after or at
    b = spool_byte(record, at + 1)
  end
  if b == 114 then -- r
    key, after = spool_match(record, '^"rate_key":"([^"\\]*)",()', at)
    at = after or at
    b = spool_byte(record, at + 1)
  end
  if b == 103 then -- g
    group, after = spool_match(record, '^"group":"([^"\\]*)",()', at)
  end
  return priority and tonumber(priority) or 0, key, group, after or at
end

-- The priority of a record (0 when it has none).
local function spool_record_priority(record)
  return (spool_routing(record))
end

-- Marks the queue as having prioritized jobs (once per script call).
local spool_priorities_marked = false
local function spool_mark_priorities(ready)
  if not spool_priorities_marked then
    redis.call('HSET', spool_sibling(ready, 'settings'), 'priorities', '1')
    spool_priorities_marked = true
  end
end

-- Puts `record` in its ready list: at the enqueue end, or at the fetch end
-- when `next` (a job handed back runs next within its priority).
local function spool_ready_push(ready, record, next)
  local level = spool_record_priority(record)
  if level ~= 0 then
    spool_mark_priorities(ready)
  end
  redis.call(next and 'RPUSH' or 'LPUSH', spool_ready_list(ready, level), record)
end

-- The lists of the queue holding ready jobs, in fetch order: just the
-- plain one unless the queue has had prioritized jobs (then one per
-- level), after the jobs holding their group's turn when the queue has had
-- grouped jobs (spool_turn_list). Also whether it has: then the lists of
-- the groups' jobs waiting for a turn come last (spool_group_lists).
local function spool_ready_lists(ready)
  local flags = redis.call('HMGET', spool_sibling(ready, 'settings'), 'priorities', 'grouped')
  local keys = {ready}
  if flags[1] then
    keys = {}
    for level = SPOOL_PRIORITY_MAX, -SPOOL_PRIORITY_MAX, -1 do
      keys[#keys + 1] = spool_ready_list(ready, level)
    end
  end
  if flags[2] then
    table.insert(keys, 1, spool_turn_list(ready))
  end
  return keys, flags[2] and true or false
end

-- The lists of the groups with jobs waiting for their turn, by group name.
local function spool_group_lists(ready)
  local groups = redis.call('SMEMBERS', spool_sibling(ready, 'groups_waiting'))
  table.sort(groups)
  for i, g in ipairs(groups) do
    groups[i] = spool_sibling(ready, 'group:' .. g)
  end
  return groups
end

-- Ready jobs of the queue, every priority included, and the grouped jobs
-- waiting for their turn (counted in the `group_turns` field `"`).
local function spool_ready_len(ready)
  local n = 0
  local lists, grouped = spool_ready_lists(ready)
  for _, key in ipairs(lists) do
    n = n + redis.call('LLEN', key)
  end
  if grouped then
    n = n + (tonumber(redis.call('HGET', spool_sibling(ready, 'group_turns'), '"')) or 0)
  end
  return n
end

-- Pops up to `want` records in fetch order across the priority lists (for
-- a queue with `priorities` set); clears the flag when every list is
-- empty. Returns the records (or nil) and whether any may be left.
local function spool_ready_pop(ready, want)
  local items = {}
  for level = SPOOL_PRIORITY_MAX, -SPOOL_PRIORITY_MAX, -1 do
    local got = redis.call('RPOP', spool_ready_list(ready, level), want - #items)
    if got then
      for _, record in ipairs(got) do
        items[#items + 1] = record
      end
      if #items >= want then
        return items, true
      end
    end
  end
  redis.call('HDEL', spool_sibling(ready, 'settings'), 'priorities')
  return #items > 0 and items or nil, false
end

-- Calls `cmd key item…` over the whole list `items`, 1000 items per call:
-- one multi-member command per chunk instead of one per item, and chunks
-- stay under unpack's stack limit. Pairs stay whole (1000 is even).
local function spool_call_chunked(cmd, key, items)
  for c = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, c, math.min(c + 999, #items)))
  end
end

-- A lease is `token|worker id` in the leases hash; the leased record stays
-- in the jobs hash exactly as fetched (its `attempt` does not yet count the
-- run in progress: the script that ends the lease adds it). Keeping records
-- out of Lua-built strings matters: Redis hashes every string a script
-- creates, byte by byte.
local SPOOL_HASH_GUARD = 'guard entry of a Spool hash: keeps it a hash table, not a listpack'

-- Before claims (below) the same guard was a member of the `active`
-- sorted set, scored +inf: the reaper still passes it over.

-- Since fetch.lua writes `token|worker|start_ms` (worker ids hold no `|`);
-- leases written before that are `token|worker`.
local function spool_lease_token(lease)
  return string.match(lease, '^(%d+)|')
end

-- True when `lease` is held with fencing token `token` (a string of
-- digits): a plain find and a byte, no pattern and no new string (ack.lua
-- writes the same out in its loop over every job's lease).
local function spool_lease_is(lease, token)
  return spool_find(lease, token, 1, true) == 1 and spool_byte(lease, #token + 1) == 124
end

local function spool_lease_worker(lease)
  return string.match(lease, '^%d+|([^|]*)')
end

local function spool_lease_start(lease)
  return string.match(lease, '^%d+|[^|]*|(%d+)')
end

-- The group whose turn the leased job holds (a fourth part: everything
-- after the third `|`), or nil. Plain finds (ack.lua writes them out in
-- its loop over every job's lease).
local function spool_lease_group(lease)
  local bar = lease and spool_find(lease, '|', 1, true)
  bar = bar and spool_find(lease, '|', bar + 1, true)
  bar = bar and spool_find(lease, '|', bar + 1, true)
  if not bar or bar == #lease then
    return nil
  end
  return spool_sub(lease, bar + 1)
end

-- Claims -------------------------------------------------------------------
-- The leases one fetch call grants are one claim, named `worker|start_ms`:
-- the part of each of its leases between the token and the group. `active`
-- holds one member per claim, scored by its deadline (Redis ms), instead
-- of one per job: a job costs Redis no sorted-set entry (a `ZADD` and a
-- `ZREM`, 15 % of its work). The `claims` hash (a sibling of `active`)
-- holds per claim how many of its leases have not ended. Each script that
-- ends leases counts them off (spool_claims_end): a claim whose leases all
-- ended leaves `active` and `claims`. A heartbeat (extend.lua) moves the
-- deadline of the claims of the leases it extends. reap.lua returns the
-- leases that name an expired claim (found by reading the leases hash
-- once: claims expire only when a worker dies or lets go of a lease), then
-- drops the claim: a lease its worker let go of without ending it (a fetch
-- reply lost on the way, a run stopped by the worker's own clock) comes
-- back one lease after the last heartbeat that named one of its claim's
-- leases. A member of `active` without a `claims` entry is a job id (the
-- layout before claims) and is reaped as that one job.

-- The claim of `lease` (`worker|start_ms`), or nil for a lease written
-- before leases had a start. `at` (optional): where the worker begins,
-- just past the token's `|`.
local function spool_lease_claim(lease, at)
  at = at or (spool_find(lease, '|', 1, true) or #lease) + 1
  local bar = spool_find(lease, '|', at, true)
  if not bar then
    return nil
  end
  local group_bar = spool_find(lease, '|', bar + 1, true)
  return spool_sub(lease, at, group_bar and group_bar - 1 or #lease)
end

-- Counts off ended leases: `counts` maps a claim to how many of its leases
-- ended (the queue's `active` key names the `claims` hash). A claim with
-- none left leaves both; so does a count that was never written (a lease
-- from before claims names a claim that does not exist).
local function spool_claims_end(active, counts)
  local claims = spool_sibling(active, 'claims')
  local gone = {}
  for claim, n in pairs(counts) do
    if redis.call('HINCRBY', claims, claim, -n) <= 0 then
      gone[#gone + 1] = claim
    end
  end
  spool_call_chunked('ZREM', active, gone)
  spool_call_chunked('HDEL', claims, gone)
end

-- How many leases of the queue have not expired (the global concurrency
-- limit's count): every lease in `leases` (less its guard field) but those
-- of claims whose deadline passed, which the reaper is about to return. A
-- member of the layout before claims (a job id) counts one.
local function spool_leases_live(active, leases, now)
  local live = redis.call('HLEN', leases) - redis.call('HEXISTS', leases, '"')
  local expired = redis.call('ZRANGEBYSCORE', active, '-inf', '(' .. spool_int(now), 'LIMIT', 0, 1000)
  if #expired > 0 then
    local counts = redis.call('HMGET', spool_sibling(active, 'claims'), unpack(expired))
    for i = 1, #expired do
      live = live - math.max(0, tonumber(counts[i] or '1') or 0)
    end
  end
  return math.max(0, live)
end

-- Counts off the one lease `lease` that ended (spool_claims_end).
local function spool_claim_end(active, lease)
  local claim = spool_lease_claim(lease)
  if claim then
    spool_claims_end(active, {[claim] = 1})
  end
end

-- The ids an operator action applies to: ARGV itself, or with ARGV[1] = '*'
-- the ARGV[2] oldest of `set` (requeue.lua, delete.lua).
local function spool_action_ids(set)
  if ARGV[1] == '*' then
    return redis.call('ZRANGE', set, 0, tonumber(ARGV[2]) - 1)
  end
  return ARGV
end

-- Leaves one token on a queue's wake list: an idle fetcher blocked on it wakes.
-- A token already there means no fetcher is blocked on the list (a blocked
-- one takes a token at once): one LLEN, nothing written.
local function spool_wake(key)
  if redis.call('LLEN', key) == 0 then
    redis.call('LPUSH', key, '1')
  end
end

-- Ordered groups ------------------------------------------------------------
-- A job enqueued with a group (`"group":"…",` after its other routing
-- fields) runs only with a turn of its group: at most `limit` of a group's
-- jobs (the settings field `groups` = `limit/hold|skip`, default `1/hold`)
-- hold one at once. The first grouped job sets the settings field
-- `grouped`, so a queue without groups never looks. Keys (named from any
-- plain queue key):
--   group_turns    HASH group → turns held; `"<job id>` → group for a job
--                  holding a turn in the retry or scheduled set (a retry
--                  in hold mode, a deferral by its rate key); `"` → how
--                  many jobs wait in the groups' lists (`"` is never in a
--                  group name or a job id); `""` → a guard value longer
--                  than hash-max-listpack-value, so the hash stays a hash
--                  table (as a listpack each lookup would scan it)
--   group:<g>      LIST the group's jobs waiting for a turn, in order
--   groups_waiting SET the groups with jobs waiting
--   ready:turn     LIST jobs holding a turn that wait only for a worker:
--                  a turn passed on, a reaped or handed-back job, a retry
--                  in hold mode come due (spool_turn_list)
-- fetch.lua takes `ready:turn` first and leases those jobs as they are; a
-- grouped job popped from the other ready lists takes a free turn of its
-- group, or waits in the group's list (jobs wait only while every turn is
-- taken: spool_group_gate). A leased grouped job's lease names its group
-- (`token|worker|start|group`), so the scripts that end it give the turn
-- back without a lookup. A job gives its turn back when it ends (done,
-- dead, cancelled, deleted; and when it fails into the retry set in skip
-- mode): the turn goes to the group's next waiting job, which moves to
-- `ready:turn`, and idle fetchers are woken.

-- The group settings of the queue whose `settings` hash is given (or of
-- `ev`, spool_events' reading of it, when it read one): turns per group
-- and whether a retrying job keeps its turn.
local function spool_group_config(ev, settings)
  local cfg
  if ev and ev.settings then
    cfg = ev.groups
  else
    cfg = redis.call('HGET', settings, 'groups')
  end
  local limit, mode = string.match(cfg or '', '^(%d+)/(%a+)$')
  limit = tonumber(limit)
  if not limit or limit < 1 then
    return 1, mode ~= 'skip'
  end
  return limit, mode ~= 'skip'
end

-- Wakes the queue's idle fetchers once per script call.
local spool_group_woken = false
local function spool_group_wake(key)
  if not spool_group_woken then
    spool_wake(spool_sibling(key, 'wake'))
    spool_group_woken = true
  end
end

-- Adds `n` (may be negative) to the count of jobs waiting in the groups'
-- lists (`turns` is the `group_turns` hash); a count driven below zero (a
-- list changed by hand) reads 0.
local function spool_group_waiting_add(turns, n)
  if n ~= 0 and redis.call('HINCRBY', turns, '"', n) < 0 then
    redis.call('HSET', turns, '"', '0')
  end
end

-- fetch.lua's gate for the `n` grouped jobs it popped from the ready
-- lists (not `ready:turn`): `gated` holds their indexes in `items` (fetch
-- order; nil when they are the first `n`) and `gated_groups` their groups
-- (its first `n` values). A job takes a free turn of its group
-- (fetch.lua has already mapped its index to its group, as for the jobs
-- holding a turn), or waits at the end of the group's list (its index set
-- in `held_back`). One HMGET and one HSET for the batch; jobs that wait
-- cost an LPUSH and an SADD per group.
-- With one turn per group (the default) and every group free, the HSET
-- alone tells whether two of the jobs share a group (it then adds fewer
-- fields than it names): no Lua table keyed by group is built, which
-- costs more than the rest of the gate (a table that grows is rehashed).
local function spool_group_gate(ev, ready, items, n, gated, gated_groups, held_back)
  local turns = spool_sibling(ready, 'group_turns')
  local limit = spool_group_config(ev)
  -- `held[k]`: the turns the group of job k held before this call.
  local held = n <= 1000 and redis.call('HMGET', turns, unpack(gated_groups, 1, n))
  if held and limit == 1 then
    local set, busy = spool_table(2 * n), false
    for k = 1, n do
      if held[k] then
        busy = true
        break
      end
      set[2 * k - 1] = gated_groups[k]
      set[2 * k] = '1'
    end
    if not busy and redis.call('HSET', turns, unpack(set)) == n then
      -- A guard field (as for the leases hash) keeps the hash a real hash
      -- table: as a listpack every lookup would scan it.
      redis.call('HSETNX', turns, '""', SPOOL_HASH_GUARD)
      return
    end
  end
  -- Each group once, in `groups`; `counts` maps it to its turns held, and
  -- `before[j]` is what group j held before this call (as `held` read it:
  -- the HSET above may have written since).
  local groups, counts, before, m = {}, {}, {}, 0
  for k = 1, n do
    local group = gated_groups[k]
    if not counts[group] then
      counts[group] = 0
      m = m + 1
      groups[m] = group
      before[m] = held and held[k]
    end
  end
  if not held then
    before = redis.call('HMGET', turns, unpack(groups))
  end
  for j = 1, m do
    local count = before[j] and (tonumber(before[j]) or 0) or 0
    before[j] = count
    counts[groups[j]] = count
  end
  local waits, waiting = {}, {}
  local parked = 0
  for k = 1, n do
    local i, group = gated and gated[k] or k, gated_groups[k]
    local count = counts[group]
    if count < limit then
      counts[group] = count + 1
    else
      if not waits[group] then
        waits[group] = {}
        waiting[#waiting + 1] = group
      end
      table.insert(waits[group], items[i])
      held_back[i] = true
      parked = parked + 1
    end
  end
  local set, c = {'""', SPOOL_HASH_GUARD}, 2
  for j = 1, m do
    local group = groups[j]
    local count = counts[group]
    if count ~= before[j] then
      set[c + 1] = group
      set[c + 2] = count == 1 and '1' or spool_int(count)
      c = c + 2
    end
  end
  spool_call_chunked('HSET', turns, set)
  for _, group in ipairs(waiting) do
    spool_call_chunked('LPUSH', spool_sibling(ready, 'group:' .. group), waits[group])
  end
  if parked > 0 then
    spool_call_chunked('SADD', spool_sibling(ready, 'groups_waiting'), waiting)
    spool_group_waiting_add(turns, parked)
  end
end

-- Passes on the turns of groups `names` (of the queue of plain key `key`)
-- after each gave back `freed[group]` (0 after a raised limit): each
-- group's next waiting jobs take what its limit leaves free, moving to
-- `ready:turn`. `ev` as for spool_group_config. An HMGET and an
-- SMISMEMBER for the batch, then an RPOP per group with jobs waiting and
-- one HSET or HDEL for the counts; when no job waits (the groups' set does
-- not exist) the SMISMEMBER is a lookup of a missing key.
local function spool_group_pass(key, names, freed, ev)
  local turns = spool_sibling(key, 'group_turns')
  local counts = redis.call('HMGET', turns, unpack(names))
  -- No group has jobs waiting when the set does not exist (the common
  -- case): one EXISTS instead of a lookup per group.
  local waiting_key = spool_sibling(key, 'groups_waiting')
  local waiting = redis.call('EXISTS', waiting_key) == 1 and
    redis.call('SMISMEMBER', waiting_key, unpack(names)) or {}
  local limit = spool_group_config(ev, spool_sibling(key, 'settings'))
  local set, del, empty, moved = {}, {}, {}, {}
  for j = 1, #names do
    local group = names[j]
    -- One turn held is the common count: no call into C for it.
    local count = counts[j]
    count = count == '1' and 1 or tonumber(count) or 0
    local kept = count - freed[group]
    if kept < 0 then
      kept = 0
    end
    local took = 0
    if waiting[j] == 1 and kept < limit then
      local list = spool_sibling(key, 'group:' .. group)
      local want = limit - kept
      local got = redis.call('RPOP', list, want) or {}
      for r = 1, #got do
        moved[#moved + 1] = got[r]
      end
      took = #got
      if took < want or redis.call('LLEN', list) == 0 then
        empty[#empty + 1] = group
      end
    end
    if kept + took ~= count then
      if kept + took > 0 then
        set[#set + 1] = group
        set[#set + 1] = spool_int(kept + took)
      else
        del[#del + 1] = group
      end
    end
  end
  spool_call_chunked('HDEL', turns, del)
  spool_call_chunked('HSET', turns, set)
  spool_call_chunked('SREM', spool_sibling(key, 'groups_waiting'), empty)
  if #moved > 0 then
    spool_group_waiting_add(turns, -#moved)
    spool_call_chunked('LPUSH', spool_turn_list(spool_sibling(key, 'ready')), moved)
    spool_group_wake(key)
  end
end

-- True when no group of the queue (`ev`, spool_events' reading of its
-- settings) can hold more than one turn: its limit has never been above 1.
-- queue_control.lua keeps `groups_wide`: '1' once a limit above 1 was
-- set, '0' while none was; a queue whose limit was never set has neither.
local function spool_group_single(ev)
  return ev ~= nil and ev.settings ~= nil and
    (ev.groups_wide == '0' or (ev.groups == nil and ev.groups_wide == nil))
end

-- Gives back the turns `groups` (a list of group names, one per turn; of
-- the queue of plain key `key`) and passes them on (spool_group_pass).
-- With one turn per group and no job waiting in any group (the set of
-- groups with jobs waiting does not exist), each group holding exactly
-- one turn simply loses it: one HDEL, after one HMGET that checks the
-- counts unless no limit above 1 was ever set (spool_group_single). The
-- groups are then distinct, and no Lua table keyed by group is built.
local function spool_group_leave(key, groups, ev)
  local n = #groups
  if n == 0 then
    return
  end
  local turns = spool_sibling(key, 'group_turns')
  if n <= 1000 and spool_group_config(ev, spool_sibling(key, 'settings')) == 1 and
      redis.call('EXISTS', spool_sibling(key, 'groups_waiting')) == 0 then
    local single = spool_group_single(ev)
    if not single then
      local counts = redis.call('HMGET', turns, unpack(groups))
      single = true
      for g = 1, n do
        if counts[g] ~= '1' then
          single = false
          break
        end
      end
    end
    if single then
      redis.call('HDEL', turns, unpack(groups))
      return
    end
  end
  local freed, names, m = {}, {}, 0
  for g = 1, n do
    local group = groups[g]
    local count = freed[group]
    if not count then
      m = m + 1
      names[m] = group
      freed[group] = 1
    else
      freed[group] = count + 1
    end
  end
  spool_group_pass(key, names, freed, ev)
end

-- A job of the queue of plain key `key` ends (or fails into the retry set
-- in skip mode): it gives back the turn it holds, if any. Its lease names
-- the group when it was running; else the `"<id>` field of `group_turns`
-- does when it waited in the retry or scheduled set holding one.
local function spool_group_end(key, id, lease, ev)
  local group = spool_lease_group(lease)
  if not group and ev and ev.grouped then
    local turns = spool_sibling(key, 'group_turns')
    group = redis.call('HGET', turns, '"' .. id)
    if group then
      redis.call('HDEL', turns, '"' .. id)
    end
  end
  if group then
    spool_group_leave(key, {group}, ev)
  end
end

-- Job `id`, holding a turn of `group`, goes to wait in the retry or
-- scheduled set keeping it: `"<id>` records the turn until the job comes
-- back (spool_group_resume) or ends (spool_group_end).
local function spool_group_hold(key, id, group)
  redis.call('HSET', spool_sibling(key, 'group_turns'), '"' .. id, group)
end

-- A job fails into the retry set: in hold mode it keeps its group's turn
-- (spool_group_hold), in skip mode it gives it back.
local function spool_group_retry(key, id, lease, ev)
  local group = spool_lease_group(lease)
  if group then
    if select(2, spool_group_config(ev, spool_sibling(key, 'settings'))) then
      spool_group_hold(key, id, group)
    else
      spool_group_leave(key, {group}, ev)
    end
  end
end

-- Job `id`, due again from the retry or scheduled set: true when it holds
-- its group's turn (it goes to `ready:turn`), its holder field dropped.
local function spool_group_resume(key, id)
  return redis.call('HDEL', spool_sibling(key, 'group_turns'), '"' .. id) == 1
end

-- A leased job goes back to ready (reaped, handed back): at the fetch end
-- of its ready list, or to `ready:turn` when its lease holds a turn of
-- its group, which it keeps.
local function spool_ready_return(ready, record, lease)
  if spool_lease_group(lease) then
    redis.call('LPUSH', spool_turn_list(ready), record)
  else
    spool_ready_push(ready, record, true)
  end
end

-- After a job left ready list `list` of the queue whose ready key is
-- `ready`: from `ready:turn` it gives back its turn; from a group's list,
-- one job fewer waits, and a list left empty leaves `groups_waiting`.
local function spool_group_unlisted(ready, list, record, ev)
  if list == spool_turn_list(ready) then
    local group = select(3, spool_routing(record))
    if group then
      spool_group_leave(ready, {group}, ev)
    end
    return
  end
  local prefix = spool_sibling(ready, 'group:')
  if string.sub(list, 1, #prefix) ~= prefix then
    return
  end
  spool_group_waiting_add(spool_sibling(ready, 'group_turns'), -1)
  if redis.call('LLEN', list) == 0 then
    redis.call('SREM', spool_sibling(ready, 'groups_waiting'), string.sub(list, #prefix + 1))
  end
end

-- After a raised limit (queue_control.lua): every group with jobs waiting
-- gives the turns now free to its next jobs, 1000 groups per pass.
local function spool_group_fill(key)
  local groups = redis.call('SMEMBERS', spool_sibling(key, 'groups_waiting'))
  for c = 1, #groups, 1000 do
    local names, freed = {}, {}
    for i = c, math.min(c + 999, #groups) do
      names[#names + 1] = groups[i]
      freed[groups[i]] = 0
    end
    spool_group_pass(key, names, freed, nil)
  end
end

-- Longest error text kept in a history entry, in bytes (ERROR_TEXT_MAX_BYTES
-- in wire.rs; a unit test checks they agree).
local SPOOL_ERROR_TEXT_MAX = 8192

-- `text` cut to at most `max` bytes without splitting a UTF-8 character:
-- the cut moves back while the first dropped byte is a continuation byte.
local function spool_cap_text(text, max)
  if #text <= max then
    return text
  end
  local e = max
  while e > 0 do
    local b = string.byte(text, e + 1)
    if b < 128 or b >= 192 then break end
    e = e - 1
  end
  return string.sub(text, 1, e)
end

-- Appends an entry to a job's error history, keeping the newest `cap`; the
-- text is cut to SPOOL_ERROR_TEXT_MAX bytes.
local function spool_push_error(key, id, now, attempt, text, cap)
  text = spool_cap_text(text, SPOOL_ERROR_TEXT_MAX)
  local history = {}
  local raw = redis.call('HGET', key, id)
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then history = decoded end
  end
  history[#history + 1] = {at_ms = now, attempt = attempt, error = text}
  while #history > cap do table.remove(history, 1) end
  redis.call('HSET', key, id, cjson.encode(history))
end

-- Removes job `id`'s entries from each hash in `hashes` (record, error
-- history, timeline, retention, cancel mark: whichever the caller passes).
local function spool_forget(id, hashes)
  for _, h in ipairs(hashes) do
    redis.call('HDEL', h, id)
  end
end

-- Releases job `id`'s uniqueness lock, if it holds one (`locks` hash: id →
-- mode `s` (until started) or `f` (until finished) followed by the lock's
-- key): the key goes only while it still names this job (a lock that
-- expired and was taken by a newer job stays). `mode` limits the release
-- to that mode; nil releases either.
local function spool_unlock(locks, id, mode)
  local held = redis.call('HGET', locks, id)
  if not held or (mode and string.sub(held, 1, 1) ~= mode) then
    return
  end
  local key = string.sub(held, 2)
  if redis.call('GET', key) == id then
    redis.call('DEL', key)
  end
  redis.call('HDEL', locks, id)
end

-- Trims a dead set to `cap` jobs, oldest first, with their records and
-- side entries (`hashes`: jobs, errors, history, followups). A dead job
-- holds no uniqueness lock (dying released it).
local function spool_cap_dead(dead, hashes, cap)
  local excess = redis.call('ZCARD', dead) - cap
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', dead, 0, excess - 1)) do
      redis.call('ZREM', dead, old)
      spool_forget(old, hashes)
    end
  end
end

-- Adds to a queue's stats hash: the total field and the current minute's.
local function spool_count(stats, field, now, n)
  n = spool_int(n)
  redis.call('HINCRBY', stats, field .. ':' .. spool_int(math.floor(now / 60000)), n)
  if field == 'p' or field == 'f' or field == 'c' then
    redis.call('HINCRBY', stats, field, n)
  end
end

-- Events -----------------------------------------------------------------
-- Each queue has a capped stream of job events (`events` key); the script
-- that makes a transition writes its events (XADD ... MAXLEN ~ cap). The
-- queue's `settings` hash says which: field `events` = `off`, `terminal`
-- (succeeded, dead, cancelled and operator actions) or `all` (also
-- enqueued, scheduled, started, retrying), field `events_max` the cap in
-- entries. An entry holds one kind of event for the jobs of one script
-- call (at most SPOOL_EVENT_BATCH): fields `event` (the kind), `jobs`
-- (id, attempt and job type of each job, all joined by `"`, which no job
-- id or type holds; empty for queue-wide actions) and `error`; operator
-- actions add `actor` and `selection`. One XADD per batch of acks or
-- fetches, not per job: an XADD costs about as much as the rest of a
-- job's ack. docs/PROTOCOL.md, "Events".

-- Must agree with EventLevel::DEFAULT and EVENTS_MAX_DEFAULT in events.rs
-- (a unit test checks).
local SPOOL_EVENTS_DEFAULT = 'terminal'
local SPOOL_EVENTS_MAX_DEFAULT = '10000'
local SPOOL_EVENT_ERROR_MAX = 200
local SPOOL_EVENT_BATCH = 100
local SPOOL_EVENT_LEVELS = {off = 0, terminal = 1, all = 2}
-- The level an event kind needs.
local SPOOL_TERMINAL, SPOOL_ALL = 1, 2

-- The events of a queue for this call: its stream key, level and cap (read
-- once from its settings hash), and, read in the same HMGET, the queue's
-- fleet controls: its global concurrency limit (`concurrency`: a positive
-- integer, else nil), rate limit (`rate`) and circuit breaker (`breaker`),
-- per-key rate limit (`key_rate`) and group settings (`groups`), as
-- written by queue_control.lua (nil when unset) with `groups_wide`
-- (spool_group_single), and whether it has
-- prioritized jobs (`priorities`) and grouped jobs (`grouped`). `settings` is kept for
-- the controls' state. Without keys (callers that pass none) the level is
-- off.
local function spool_events(events, settings)
  if not events or not settings then
    return {level = 0}
  end
  local cfg = redis.call('HMGET', settings, 'events', 'events_max', 'concurrency', 'rate', 'breaker',
    'priorities', 'key_rate', 'grouped', 'groups', 'due', 'groups_wide')
  local level = SPOOL_EVENT_LEVELS[cfg[1] or SPOOL_EVENTS_DEFAULT] or
    SPOOL_EVENT_LEVELS[SPOOL_EVENTS_DEFAULT]
  local max = cfg[2] and string.match(cfg[2], '^[1-9]%d*$') or SPOOL_EVENTS_MAX_DEFAULT
  local limit = cfg[3] and string.match(cfg[3], '^[1-9]%d*$')
  return {key = events, level = level, max = max, concurrency = limit and tonumber(limit),
    settings = settings, rate = cfg[4] or nil, breaker = cfg[5] or nil, priorities = cfg[6] and true,
    key_rate = cfg[7] or nil, grouped = cfg[8] and true, groups = cfg[9] or nil,
    due = tonumber(cfg[10] or ''), groups_wide = cfg[11] or nil}
end

-- The due hint -------------------------------------------------------------
-- The settings field `due` (Redis ms) is at or before the earliest job due
-- in the scheduled and retry sets: a script that adds one sooner lowers it
-- (spool_due), promote.lua sets it to the sets' new head after each pass.
-- fetch.lua returns it, so a busy worker (whose fetcher never waits for a
-- wake token) learns of a job due before its scheduler's next pass, from
-- any producer or worker, and nudges its scheduler.

-- Lowers the queue's due hint to `at` (ms) when `at` is sooner.
local function spool_due(ev, at)
  if ev.settings and (not ev.due or at < ev.due) then
    ev.due = at
    redis.call('HSET', ev.settings, 'due', spool_int(at))
  end
end

-- Writes one entry: event `kind` of `jobs` (id, attempt, type, … ; may be
-- empty, and `attempt"type` may be one element), with an error, and the
-- actor and selection of an operator action.
local function spool_event_write(ev, kind, jobs, err, actor, selection)
  local listed = table.concat(jobs, '"')
  if actor then
    redis.call('XADD', ev.key, 'MAXLEN', '~', ev.max, '*', 'event', kind, 'jobs', listed,
      'error', err or '', 'actor', actor, 'selection', selection or '')
  else
    redis.call('XADD', ev.key, 'MAXLEN', '~', ev.max, '*', 'event', kind, 'jobs', listed,
      'error', err or '')
  end
end

-- Writes event `kind` of job `id` (nil or '' for a queue-wide one) in an
-- entry of its own when the queue's level is at least `level`. `job_type`,
-- `attempt` and `err` may be nil; an actor (with the selection it acted
-- on) marks an operator action.
local function spool_event(ev, level, kind, id, job_type, attempt, err, actor, selection)
  if ev.level < level then
    return
  end
  local jobs = {}
  if id and id ~= '' then
    jobs = {id, attempt or '', job_type or ''}
  end
  spool_event_write(ev, kind, jobs, err and spool_cap_text(err, SPOOL_EVENT_ERROR_MAX), actor,
    selection)
end

-- Adds event `kind` of job `id` to this call's batch for that kind (and
-- actor): an entry is written each SPOOL_EVENT_BATCH jobs, and
-- spool_events_flush writes the rest. Per job two table writes. `tail` is
-- the job's attempt and type joined by `"` (ack.lua gets it so from the
-- worker: one argument per job instead of two).
local function spool_event_add(ev, level, kind, id, tail, actor, selection)
  if ev.level < level then
    return
  end
  if not ev.batches then
    ev.batches, ev.order = {}, {}
  end
  local key = kind .. '"' .. (actor or '') .. '"' .. (selection or '')
  local batch = ev.batches[key]
  if not batch then
    batch = {kind = kind, actor = actor, selection = selection, jobs = {}}
    ev.batches[key] = batch
    ev.order[#ev.order + 1] = key
  end
  local jobs = batch.jobs
  jobs[#jobs + 1] = id
  jobs[#jobs + 1] = tail
  if #jobs >= 2 * SPOOL_EVENT_BATCH then
    spool_event_write(ev, kind, jobs, nil, actor, selection)
    batch.jobs = {}
  end
end

-- Writes the events spool_event_add batched, in the order their kinds
-- first came.
local function spool_events_flush(ev)
  if not ev.batches then
    return
  end
  for _, key in ipairs(ev.order) do
    local batch = ev.batches[key]
    if #batch.jobs > 0 then
      spool_event_write(ev, batch.kind, batch.jobs, nil, batch.actor, batch.selection)
    end
  end
  ev.batches, ev.order = nil, nil
end

-- Fleet controls: rate limit and circuit breaker ---------------------------
-- Both keep their configuration and state in the queue's settings hash, so a
-- queue without them pays nothing beyond the fields spool_events reads.

-- A rate limit `n/period_ms[/burst]` as (ms between jobs, burst), or nil.
local function spool_rate_parse(cfg)
  local n, period, burst = string.match(cfg or '', '^(%d+)/(%d+)/?(%d*)$')
  n, period = tonumber(n), tonumber(period)
  if not n or n < 1 or period < 1 then
    return nil
  end
  return period / n, math.max(1, tonumber(burst) or n)
end

-- The rate limit's room now: a token bucket kept as one number, the
-- theoretical arrival time (GCRA, field `rate_tat`): a full bucket holds
-- `burst` jobs and refills one every `interval` ms, so a backlog starts
-- evenly spaced. Returns (jobs allowed now, the time to build on, ms until
-- the next job is allowed when none is).
local function spool_rate_room(ev, now)
  local interval, burst = spool_rate_parse(ev.rate)
  if not interval then
    return nil
  end
  local tat = math.max(tonumber(redis.call('HGET', ev.settings, 'rate_tat')) or 0, now)
  local room = math.floor((now + burst * interval - tat) / interval + 1e-9)
  if room >= 1 then
    return room, tat, 0, interval
  end
  return 0, tat, math.max(1, math.ceil(tat - (burst - 1) * interval - now)), interval
end

-- Spends `n` jobs of the rate limit's room (after spool_rate_room).
local function spool_rate_take(ev, tat, interval, n)
  if n > 0 then
    redis.call('HSET', ev.settings, 'rate_tat', string.format('%.3f', tat + n * interval))
  end
end

-- The per-key rate limit (`key_rate` = `n/period_ms[/burst]`) gives each
-- rate key (`"rate_key":"…",` in a record, after any priority) a bucket of
-- its own: the field `key` of the queue's `rate_keys` hash holds its
-- theoretical arrival time, as `rate_tat` does for the queue. A job whose
-- key has no room is not leased: the bucket is spent for it at the next
-- start the key allows (so a key's jobs keep their order), and it waits
-- for that start in the scheduled set, marked in `rate_reserved` so it is
-- not charged again when it comes back. Returns true when the job may
-- start now.
local function spool_key_gate(ev, ready, jobs, id, record, now, at)
  local _, key = spool_routing(record, at)
  if not key then
    return true
  end
  local reserved = spool_sibling(ready, 'rate_reserved')
  if redis.call('HDEL', reserved, id) == 1 then
    return true
  end
  local interval, burst = spool_rate_parse(ev.key_rate)
  if not interval then
    return true
  end
  local buckets = spool_sibling(ready, 'rate_keys')
  local tat = math.max(tonumber(redis.call('HGET', buckets, key)) or 0, now)
  local free_at = tat - (burst - 1) * interval
  redis.call('HSET', buckets, key, string.format('%.3f', tat + interval))
  if free_at <= now + 1e-6 then
    return true
  end
  redis.call('HSET', jobs, id, record)
  redis.call('ZADD', spool_sibling(ready, 'scheduled'), math.ceil(free_at), id)
  spool_due(ev, math.ceil(free_at))
  redis.call('HSET', reserved, id, '1')
  return false
end

-- A breaker `percent/window/cooldown_ms/probes` as numbers, or nil.
local function spool_breaker_parse(cfg)
  local pct, window, cooldown, probes = string.match(cfg or '', '^(%d+)/(%d+)/(%d+)/(%d+)$')
  pct, window, cooldown, probes = tonumber(pct), tonumber(window), tonumber(cooldown), tonumber(probes)
  if not pct or pct < 1 or pct > 100 or window < 1 or probes < 1 then
    return nil
  end
  return pct, window, cooldown, probes
end

-- The breaker's gate for a fetch: (jobs allowed, nil for no cap; ms to hold
-- the queue when none are). Open: nothing until the cool-down ends; then
-- half-open: `probes` jobs in all, until their outcomes close or reopen it.
local function spool_breaker_gate(ev, now)
  local _, _, _, probes = spool_breaker_parse(ev.breaker)
  if not probes then
    return nil, 0
  end
  local st = redis.call('HMGET', ev.settings, 'br_state', 'br_until', 'br_probes')
  if st[1] == 'open' then
    local left = (tonumber(st[2]) or 0) - now
    if left > 0 then
      return 0, math.ceil(left)
    end
    redis.call('HSET', ev.settings, 'br_state', 'half', 'br_probes', 0, 'br_ok', 0)
    spool_event(ev, SPOOL_TERMINAL, 'breaker_half_open', '', nil, nil, nil, nil,
      'probes=' .. probes)
    return probes, 0
  elseif st[1] == 'half' then
    return math.max(0, probes - (tonumber(st[3]) or 0)), 0
  end
  return nil, 0
end

-- Counts `n` probe jobs handed out while half-open.
local function spool_breaker_probes(ev, n)
  if n > 0 and ev.breaker and redis.call('HGET', ev.settings, 'br_state') == 'half' then
    redis.call('HINCRBY', ev.settings, 'br_probes', n)
  end
end

-- Notes `ok` succeeded and `failed` failed runs of the queue for its
-- breaker. Closed: the failures of the last `window` runs are estimated
-- from two buckets of `window` runs (the current one, and the previous one
-- weighted by how much of it the window still covers); reaching `percent`
-- of the window opens the breaker for `cooldown` ms. Half-open: a failure
-- reopens it, `probes` successes close it. Open: outcomes of runs that
-- started before it opened are ignored. Returns true when it closed (the
-- caller wakes the queue's fetchers).
local function spool_breaker_note(ev, now, ok, failed)
  if not ev.breaker then
    return false
  end
  local pct, window, cooldown, probes = spool_breaker_parse(ev.breaker)
  if not pct then
    return false
  end
  local st = redis.call('HMGET', ev.settings, 'br_state', 'br_n', 'br_f', 'br_pf', 'br_ok')
  local function open(why)
    redis.call('HSET', ev.settings, 'br_state', 'open', 'br_until', spool_int(now + cooldown),
      'br_n', 0, 'br_f', 0, 'br_pf', 0)
    spool_event(ev, SPOOL_TERMINAL, 'breaker_opened', '', nil, nil, why, nil,
      'cooldown_ms=' .. spool_int(cooldown))
  end
  if st[1] == 'open' then
    return false
  elseif st[1] == 'half' then
    if failed > 0 then
      open('a probe job failed while the breaker was half-open')
      return false
    end
    if (tonumber(st[5]) or 0) + ok >= probes then
      redis.call('HDEL', ev.settings, 'br_state', 'br_until', 'br_probes', 'br_ok')
      spool_event(ev, SPOOL_TERMINAL, 'breaker_closed', '', nil, nil, nil, nil,
        'probes=' .. probes)
      return true
    end
    redis.call('HINCRBY', ev.settings, 'br_ok', ok)
    return false
  end
  local n = (tonumber(st[2]) or 0) + ok + failed
  local f = (tonumber(st[3]) or 0) + failed
  local pf = tonumber(st[4]) or 0
  local estimate = f + pf * math.max(0, 1 - n / window)
  if failed > 0 and estimate * 100 >= pct * window then
    open(spool_int(math.floor(estimate + 0.5)) .. ' of the last ' .. spool_int(window) ..
      ' runs failed (threshold ' .. spool_int(pct) .. '%)')
  elseif n >= window then
    redis.call('HSET', ev.settings, 'br_n', 0, 'br_f', 0, 'br_pf', f)
  else
    redis.call('HSET', ev.settings, 'br_n', n, 'br_f', f)
  end
  return false
end

-- The job type of a Spool record (the `"type"` field right after the head
-- or after `"keep_outcome_ms":N,`), or nil.
local function spool_record_type(record)
  local _, _, _, _, at = spool_head(record or '')
  if not at then
    return nil
  end
  at = select(4, spool_routing(record, at))
  return string.match(record, '^"type":"([^"\\]*)"', at) or
    string.match(record, '^"keep_outcome_ms":%d+,"type":"([^"\\]*)"', at)
end

-- Job timelines ----------------------------------------------------------
-- A job's timeline is a JSON array of entries [at_ms, state, attempt] or
-- [at_ms, state, attempt, worker, error], oldest first, in the `history`
-- hash. The hot path (enqueue to ready, fetch, ack of a job that keeps no
-- outcome) writes no entry: the record's enqueued_ms stands for the first
-- one and the lease (`token|worker|start_ms`, written by fetch.lua) for the
-- run in progress; the first script that writes the timeline folds them
-- in, with the times those scripts recorded.

-- Longest error text in a timeline entry (the error history keeps 8 KiB).
local SPOOL_HISTORY_ERROR_MAX = 200
-- Largest timeline kept per job, in bytes: the oldest entries go first.
local SPOOL_HISTORY_MAX_BYTES = 4096

-- One entry; `at` and `attempt` are integers or their decimal strings.
local function spool_hist_entry(at, state, attempt, worker, err)
  local e = '[' .. at .. ',"' .. state .. '",' .. attempt
  if worker or err then
    e = e .. ',' .. cjson.encode(worker or '')
    if err then
      e = e .. ',' .. cjson.encode(spool_cap_text(err, SPOOL_HISTORY_ERROR_MAX))
    end
  end
  return e .. ']'
end

-- The JSON string of the worker holding `lease`. Worker ids repeat across
-- a batch: each is encoded once per call.
local spool_worker_json = {}
local function spool_lease_worker_json(lease)
  local worker = spool_lease_worker(lease) or ''
  local encoded = spool_worker_json[worker]
  if not encoded then
    encoded = cjson.encode(worker)
    spool_worker_json[worker] = encoded
  end
  return encoded
end

-- The entry of the run a lease stands for: active since the lease began.
local function spool_lease_entry(lease, attempt)
  return '[' .. (spool_lease_start(lease) or '0') .. ',"active",' .. attempt .. ',' ..
    spool_lease_worker_json(lease) .. ']'
end

-- Job `id`'s timeline so far: the stored one, or the entry its record
-- implies (`first_state`, default ready, at enqueued_ms).
local function spool_history_get(hist, id, record, first_state)
  local h = redis.call('HGET', hist, id)
  if h then
    return h
  end
  local _, attempt, _, enqueued = spool_head(record or '')
  if not enqueued then
    return '[]'
  end
  return '[' .. spool_hist_entry(enqueued, first_state or 'ready', attempt) .. ']'
end

-- `history` with `entries` (encoded entries) appended, the oldest dropped
-- while it is over SPOOL_HISTORY_MAX_BYTES.
local function spool_history_append(history, entries)
  local body = table.concat(entries, ',')
  local out
  if history == '[]' or history == '' then
    out = '[' .. body .. ']'
  else
    out = string.sub(history, 1, -2) .. ',' .. body .. ']'
  end
  if #out <= SPOOL_HISTORY_MAX_BYTES then
    return out
  end
  local ok, list = pcall(cjson.decode, out)
  if not ok or type(list) ~= 'table' then
    return '[' .. body .. ']'
  end
  local parts, total = {}, 1
  for i, e in ipairs(list) do
    parts[i] = cjson.encode(e)
    total = total + #parts[i] + 1
  end
  local first = 1
  while first < #parts and total > SPOOL_HISTORY_MAX_BYTES do
    total = total - #parts[first] - 1
    first = first + 1
  end
  return '[' .. table.concat(parts, ',', first) .. ']'
end

-- Finished jobs ------------------------------------------------------------
-- `q` holds a queue's keys for the scripts that end jobs: jobs, errors,
-- history, cancels, waiters, stats, outcomes (the index of outcome
-- buckets) and channel (the namespace's finished channel).

-- The keys a script that ends jobs works with (`q` below): its jobs,
-- errors and stats keys, the finished channel, and the side keys, which
-- every such script receives as one block of KEYS starting at `first`
-- (`QueueKeys::finishing` in keys.rs): history, cancels, waiters,
-- outcomes, locks, events, settings, followups, outbox; `ev` is the
-- queue's events (spool_events).
local function spool_finishing(first, jobs, errors, stats, channel)
  return {jobs = jobs, errors = errors, stats = stats, channel = channel,
    history = KEYS[first], cancels = KEYS[first + 1], waiters = KEYS[first + 2],
    outcomes = KEYS[first + 3], locks = KEYS[first + 4],
    ev = spool_events(KEYS[first + 5], KEYS[first + 6]),
    followups = KEYS[first + 7], outbox = KEYS[first + 8]}
end

-- Follow-up jobs ------------------------------------------------------------
-- A job enqueued with follow-ups (on success, on failure = dead, on
-- completion = any end) has them in the `followups` hash: job id → JSON
-- array of [on, queue, id, max_attempts, body, its own follow-ups (an array
-- of the same, or JSON text of one, or ''), at_ms, delay_ms], each a job prepared by the producer with its id chosen
-- then. The script that ends the job appends the ones its end triggers to
-- the queue's `outbox` list as `queue"id"max_attempts"at_ms"delay_ms"n"` +
-- its own follow-ups (n bytes) + body, the body ending with the parent:
-- `"parent":{"id","queue","state","result","error","type","attempts",
-- "finished_ms"}`; a worker's scheduler
-- moves them into their queues (enqueue.lua with the follow-up's id as a
-- uniqueness key, so a move repeated after a crash creates nothing).
-- A batch member (or chain link) carries the entry ['batch', home queue,
-- batch id, keep]: each of its ends appends `!batch"home"batch"id"state"ms"`
-- + its result (when keep is 1 and it is done) to the outbox, and the
-- mover applies it to the batch (batch_member.lua, in the home's slot).

-- Appends follow-up `f` (an entry of a `followups` array) to `outbox`,
-- its body closed by `tail` (`,"parent":{...}}` or the like).
local function spool_outbox_push(outbox, f, tail)
  local body = tostring(f[5] or '')
  local own = f[6]
  if type(own) == 'table' then
    own = next(own) and cjson.encode(own) or ''
  elseif type(own) ~= 'string' then
    own = ''
  end
  if string.sub(body, -1) == '}' then
    redis.call('RPUSH', outbox, tostring(f[2]) .. '"' .. tostring(f[3]) .. '"' ..
      spool_int(tonumber(f[4]) or 1) .. '"' .. spool_int(tonumber(f[7]) or 0) .. '"' ..
      spool_int(tonumber(f[8]) or 0) .. '"' .. spool_int(#own) .. '"' .. own ..
      string.sub(body, 1, -2) .. tail)
  end
end

-- Queues the follow-ups of job `id` that ending `state` triggers (done,
-- dead or cancelled) at `now`, after `attempts` runs, with `result` (JSON
-- text) or `err`, and its `job_type` (each may be nil). Done and
-- cancelled end the job's follow-ups; a dead job keeps them (retried from
-- dead and dying again triggers the same ids, which the move refuses).
local function spool_follow_ups(q, id, state, result, err, attempts, job_type, now)
  if not q.followups then
    return
  end
  local raw = redis.call('HGET', q.followups, id)
  if not raw then
    return
  end
  if state ~= 'dead' then
    redis.call('HDEL', q.followups, id)
  end
  local ok, list = pcall(cjson.decode, raw)
  if not ok or type(list) ~= 'table' then
    return
  end
  local parent
  for _, f in ipairs(list) do
    local on = type(f) == 'table' and f[1]
    if on == 'batch' then
      redis.call('RPUSH', q.outbox, '!batch"' .. tostring(f[2]) .. '"' .. tostring(f[3]) ..
        '"' .. id .. '"' .. state .. '"' .. spool_int(now or 0) .. '"' ..
        ((f[4] == 1 and state == 'done' and result) or ''))
    elseif on == 'complete' or (on == 'success' and state == 'done') or
        (on == 'failure' and state == 'dead') then
      if not parent then
        parent = ',"parent":{"id":' .. cjson.encode(id) .. ',"queue":"' ..
          (string.match(q.jobs, '{([^}]*)}') or '') .. '","state":"' .. state ..
          '","result":' .. (result or 'null') .. ',"error":' ..
          (err and cjson.encode(spool_cap_text(err, SPOOL_ERROR_TEXT_MAX)) or 'null') ..
          ',"type":' .. (job_type and cjson.encode(job_type) or 'null') ..
          ',"attempts":' .. (tonumber(attempts) and spool_int(tonumber(attempts)) or 'null') ..
          ',"finished_ms":' .. (now and spool_int(now) or 'null') .. '}}'
      end
      spool_outbox_push(q.outbox, f, parent)
    end
  end
end

-- A job an operator removes before it ends (delete, clear) leaves its
-- batches: each `batch` entry of its follow-ups reports it cancelled at
-- `now` into `outbox` (when given), so the batch can still finish. Call
-- before the follow-ups are dropped.
local function spool_leave_batches(followups, outbox, id, now)
  if not outbox or not followups then
    return
  end
  local raw = redis.call('HGET', followups, id)
  if not raw or not string.find(raw, '"batch"', 1, true) then
    return
  end
  local ok, list = pcall(cjson.decode, raw)
  if not ok or type(list) ~= 'table' then
    return
  end
  for _, f in ipairs(list) do
    if type(f) == 'table' and f[1] == 'batch' then
      redis.call('RPUSH', outbox, '!batch"' .. tostring(f[2]) .. '"' .. tostring(f[3]) .. '"' ..
        id .. '"cancelled"' .. spool_int(now) .. '"')
    end
  end
end

-- The outcome retention (ms) a record asks for: its body starts with
-- `"keep_outcome_ms":N,` right after the head (job_record.lua); or nil.
local function spool_record_keep(record)
  local _, _, _, _, at = spool_head(record or '')
  at = at and select(4, spool_routing(record, at))
  local keep = at and tonumber(string.match(record, '^"keep_outcome_ms":(%d+),', at))
  if keep and keep > 0 then
    return keep
  end
  return nil
end

-- Kept outcomes ------------------------------------------------------------
-- A kept outcome is a field (the job id) of a bucket hash
-- `<outcomes>:<end_ms>`: every outcome whose retention ends in the same
-- window shares one bucket, so an outcome costs a hash field, not a key.
-- The window is the largest power of two of ms (at least 128) that is at
-- most 1/32 of the retention: an outcome is kept at least its retention
-- and less than 1/32 of it (or 128 ms) longer. The `outcomes` sorted set
-- indexes the buckets by end; readers ignore a bucket whose end has
-- passed, the trimmer unlinks it (a background free), and Redis expires it
-- SPOOL_OUTCOME_GRACE_MS later when no trimmer runs. An outcome starts
-- with the ms from its finish to its bucket's end (shorter than the time).
local SPOOL_OUTCOME_GRACE_MS = 300000

-- Bucket end and the outcome's opening `[ms before the end,` per retention,
-- memoized for the script call (its `now` does not change).
local spool_outcome_ends = {}

-- The end (ms) of the bucket that holds an outcome kept `keep` ms from
-- `now`, and the outcome's opening: `[` and the ms from `now` to that end.
local function spool_outcome_end(keep, now)
  local known = spool_outcome_ends[keep]
  if not known then
    local w = 128
    while w * 64 <= keep do
      w = w * 2
    end
    local ends = math.ceil((now + keep) / w) * w
    known = {ends, '[' .. spool_int(ends - now) .. ','}
    spool_outcome_ends[keep] = known
  end
  return known[1], known[2]
end

-- Adds `value` as the outcome of job `id` to `batch` (a table: bucket end
-- → {id, value, ...}) for the bucket ending at `ends`; spool_outcome_write
-- stores a batch with one HSET per bucket.
local function spool_outcome_add(batch, ends, id, value)
  local fields = batch[ends]
  if not fields then
    fields = {}
    batch[ends] = fields
  end
  fields[#fields + 1] = id
  fields[#fields + 1] = value
end

-- Stores a batch of outcomes (spool_outcome_add) in queue `q`'s buckets.
local function spool_outcome_write(q, batch)
  for ends, fields in pairs(batch) do
    local ends_s = spool_int(ends)
    local bucket = q.outcomes .. ':' .. ends_s
    spool_call_chunked('HSET', bucket, fields)
    redis.call('ZADD', q.outcomes, 'NX', ends_s, ends_s)
    redis.call('PEXPIREAT', bucket, spool_int(ends + SPOOL_OUTCOME_GRACE_MS))
  end
end

-- The alias (a small integer, as a string) of the worker holding `lease`
-- in the `workers` hash: field `=<worker id>` → alias and `<alias>` →
-- worker id, `#` the last alias given. Made on first use, memoized per call.
local spool_aliases = {}
local function spool_worker_alias(workers, lease)
  local worker = spool_lease_worker(lease) or ''
  local alias = spool_aliases[worker]
  if not alias then
    alias = redis.call('HGET', workers, '=' .. worker)
    if not alias then
      alias = spool_int(redis.call('HINCRBY', workers, '#', 1))
      redis.call('HSET', workers, alias, worker, '=' .. worker, alias)
    end
    spool_aliases[worker] = alias
  end
  return alias
end

-- The kept outcome of job `id` (the newest when it has several), its
-- bucket key and the bucket's end (ms); nil when it has none.
local function spool_outcome_find(outcomes, id, now)
  local ends = redis.call('ZREVRANGEBYSCORE', outcomes, '+inf', '(' .. spool_int(now))
  for _, e in ipairs(ends) do
    local bucket = outcomes .. ':' .. e
    local value = redis.call('HGET', bucket, id)
    if value then
      return value, bucket, tonumber(e)
    end
  end
end

-- Removes every kept outcome of the jobs `ids` (one HDEL per bucket).
local function spool_outcome_forget(outcomes, ids, now)
  if #ids == 0 then
    return
  end
  local ends = redis.call('ZRANGEBYSCORE', outcomes, '(' .. spool_int(now), '+inf')
  for _, e in ipairs(ends) do
    spool_call_chunked('HDEL', outcomes .. ':' .. e, ids)
  end
end

-- Writes the outcome of job `id` if its record asks to keep one, finished
-- now as `state` after `attempt` runs, with its timeline, result (JSON) or
-- error: the JSON array [ms before the bucket's end, null, state, attempts,
-- null, null, type, result, error, timeline, max_attempts] (PROTOCOL.md).
-- The ack of a job with no stored timeline writes the short form that the
-- worker prepared instead (ack.lua).
local function spool_write_outcome(q, id, state, record, attempt, history, result, err, now)
  local keep = spool_record_keep(record)
  if not keep then
    return
  end
  local _, _, max_attempts = spool_head(record or '')
  local job_type = spool_record_type(record)
  job_type = job_type and '"' .. job_type .. '"'
  local e = err and cjson.encode(spool_cap_text(err, SPOOL_ERROR_TEXT_MAX)) or 'null'
  local ends, opening = spool_outcome_end(keep, now)
  local batch = {}
  spool_outcome_add(batch, ends, id, opening .. 'null,"' .. state .. '",' .. attempt ..
    ',null,null,' .. (job_type or 'null') .. ',' .. (result or 'null') .. ',' .. e .. ',' ..
    history .. ',' .. (max_attempts or 'null') .. ']')
  spool_outcome_write(q, batch)
end

-- Tells the `wait` calls registered for job `id` that it finished as `state`.
local function spool_announce(q, id, state)
  if redis.call('HDEL', q.waiters, id) == 1 then
    redis.call('PUBLISH', q.channel, state .. ' ' .. id)
  end
end

-- Ends job `id` as cancelled: its timeline gets the run that `lease` stands
-- for (when it was running) and the cancellation; the outcome is kept when
-- the job keeps one; the record and its side entries go; a waiter is told.
-- `attempt` is the runs it had.
local function spool_cancelled(q, id, record, lease, attempt, now, first_state)
  local entries = {}
  if lease then
    entries[1] = spool_lease_entry(lease, attempt)
  end
  entries[#entries + 1] = spool_hist_entry(spool_int(now), 'cancelled', attempt, q.actor)
  local history = spool_history_append(
    spool_history_get(q.history, id, record, first_state), entries)
  spool_write_outcome(q, id, 'cancelled', record, attempt, history, nil, nil, now)
  spool_forget(id, {q.jobs, q.errors, q.history, q.cancels})
  if q.locks then
    spool_unlock(q.locks, id, nil)
  end
  spool_group_end(q.jobs, id, lease, q.ev)
  spool_count(q.stats, 'c', now, 1)
  spool_announce(q, id, 'cancelled')
  local job_type = spool_record_type(record)
  spool_follow_ups(q, id, 'cancelled', nil, nil, attempt, job_type, now)
  if q.ev then
    spool_event(q.ev, SPOOL_TERMINAL, 'cancelled', id, job_type, attempt, nil, q.actor,
      q.selection)
  end
end

-- True when the run holding `lease` of job `id` was asked to cancel.
local function spool_cancel_asked(q, id, lease)
  local mark = redis.call('HGET', q.cancels, id)
  return mark and mark == spool_lease_token(lease) or false
end

-- Back to ready ------------------------------------------------------------

-- Moves job `id` from the jobs hash to the ready list, made ready at
-- `now_s` with its attempt unchanged, to the head (the end fetched last),
-- and adds `entries` and the move to its timeline in `hist` (a job that has
-- none yet starts it with `first_state` at its enqueued_ms; one holding
-- its group's turn goes to `ready:turn`: spool_group_resume); `audit`
-- (operator actions: {ev, kind, actor, selection}) names the actor on the
-- timeline and writes event `kind`. Returns 1, or 0 when its record is
-- gone. For requeue and promote.
local function spool_to_ready(jobs, ready, hist, id, now_s, first_state, audit)
  local record = redis.call('HGET', jobs, id)
  if not record then
    return 0
  end
  redis.call('HDEL', jobs, id)
  local _, attempt = spool_head(record)
  local history = spool_history_get(hist, id, record, first_state)
  redis.call('HSET', hist, id, spool_history_append(history,
    {spool_hist_entry(now_s, 'ready', attempt or '0', audit and audit.actor)}))
  record = spool_restamp(record, now_s, 0)
  if select(3, spool_routing(record)) and spool_group_resume(ready, id) then
    redis.call('LPUSH', spool_turn_list(ready), record)
  else
    spool_ready_push(ready, record)
  end
  if audit then
    spool_event_add(audit.ev, SPOOL_TERMINAL, audit.kind, id,
      (attempt or '0') .. '"' .. (spool_record_type(record) or ''), audit.actor, audit.selection)
  end
  return 1
end

-- Moves the jobs `ids` of sorted set `set` to the ready list (those still
-- in the set), then wakes idle fetchers if any moved. Returns how many.
-- For requeue.lua (operator retry / run now) and promote.lua (due jobs);
-- `first_state` names the set for jobs whose timeline starts here; `audit`
-- as for spool_to_ready.
local function spool_set_to_ready(set, jobs, ready, wake, hist, ids, now_s, first_state, audit)
  local moved = 0
  for _, id in ipairs(ids) do
    if redis.call('ZREM', set, id) == 1 then
      moved = moved + spool_to_ready(jobs, ready, hist, id, now_s, first_state, audit)
    end
  end
  if audit then
    spool_events_flush(audit.ev)
  end
  if moved > 0 then
    spool_wake(wake)
  end
  return moved
end
