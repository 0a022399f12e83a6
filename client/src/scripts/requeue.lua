-- requeue.lua: dead set --operator retry--> ready; also "retry now" on the
-- retry set and "run now" on the scheduled set.
--
-- A job moves only if this call removed it from the set, so two clicks on
-- Retry put it back once. Its error history stays for the job page; its
-- attempt counter stays too, so a job retried from dead gets one more run
-- before it returns to the dead set (Sidekiq's behaviour).
--
-- A job that kept its outcome when it died is live again: that outcome is
-- removed (it gets a new one when it finishes). Its timeline gets `ready`
-- naming the actor, and each job moved an event (level terminal):
-- `retried` from the dead or retry set, `run_now` from the scheduled set.
--
-- KEYS[1] the source set  KEYS[2] jobs  KEYS[3] ready  KEYS[4] wake
-- KEYS[5] history  KEYS[6] outcomes  KEYS[7] events  KEYS[8] settings
-- ARGV[1] actor  ARGV[2] selection (what the operator chose, for the
-- events)  ARGV[3] the source set's state name, then ids to move; or
-- ARGV[4] = '*' and ARGV[5] = n to move the n oldest.
-- Returns the number of jobs moved.
local now = spool_now()
local now_s = spool_int(now)
local actor = table.remove(ARGV, 1)
local selection = table.remove(ARGV, 1)
local state = table.remove(ARGV, 1)
local audit = {ev = spool_events(KEYS[7], KEYS[8]), actor = actor, selection = selection,
  kind = state == 'scheduled' and 'run_now' or 'retried'}
local ids = spool_action_ids(KEYS[1])
local in_set = {}
for _, id in ipairs(ids) do
  if redis.call('ZSCORE', KEYS[1], id) then
    in_set[#in_set + 1] = id
  end
end
spool_outcome_forget(KEYS[6], in_set, now)
return spool_set_to_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ids, now_s, state, audit)
