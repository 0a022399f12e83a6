-- delete.lua: scheduled / retry / dead set --operator delete--> gone.
--
-- The record, error history and timeline go; an outcome
-- the job kept when it died stays until it expires.
--
-- KEYS[1] the set  KEYS[2] jobs  KEYS[3] errors  KEYS[4] history
-- KEYS[5] locks (a deleted job's uniqueness lock is released)
-- KEYS[6] waiters (a `wait` for a deleted job hears `deleted`)
-- KEYS[7] events  KEYS[8] settings (a `deleted` event per job, level
-- terminal, naming the actor)  KEYS[9] followups (a deleted job's are
-- dropped, never triggered)  KEYS[10] outbox (optional: a scheduled or
-- retrying batch member deleted reports itself cancelled to its batch; a
-- dead one was counted dead already)
-- ARGV[1] actor  ARGV[2] selection  ARGV[3] the finished channel, then ids
-- to delete; or ARGV[4] = '*' and ARGV[5] = n to delete the n oldest.
-- Returns the number of jobs deleted.
local actor = table.remove(ARGV, 1)
local selection = table.remove(ARGV, 1)
local q = {waiters = KEYS[6], channel = table.remove(ARGV, 1)}
local ev = spool_events(KEYS[7], KEYS[8])
local ids = spool_action_ids(KEYS[1])
local deleted = 0
-- The dead set's key ends with `:dead` (keys.rs): its members already ended.
local leaving = string.sub(KEYS[1], -5) ~= ':dead' and KEYS[10]
local now = leaving and spool_now()
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    if ev.level >= SPOOL_TERMINAL then
      local record = redis.call('HGET', KEYS[2], id) or ''
      local _, attempt = spool_head(record)
      spool_event_add(ev, SPOOL_TERMINAL, 'deleted', id,
        (attempt or '') .. '"' .. (spool_record_type(record) or ''), actor, selection)
    end
    if leaving then
      spool_leave_batches(KEYS[9], KEYS[10], id, now)
    end
    spool_forget(id, {KEYS[2], KEYS[3], KEYS[4], KEYS[9]})
    spool_unlock(KEYS[5], id, nil)
    spool_group_end(KEYS[2], id, nil, ev)
    spool_announce(q, id, 'deleted')
    deleted = deleted + 1
  end
end
spool_events_flush(ev)
return deleted
