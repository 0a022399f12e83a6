-- requeue.lua: dead set --operator retry--> ready; also "retry now" on the
-- retry set and "run now" on the scheduled set.
--
-- A job moves only if this call removed it from the set, so two clicks on
-- Retry put it back once. Its error history stays for the job page; its
-- attempt counter stays too, so a job retried from dead gets one more run
-- before it returns to the dead set (Sidekiq's behaviour).
--
-- KEYS[1] the source set  KEYS[2] jobs  KEYS[3] ready  KEYS[4] wake
-- ARGV ids to move; or ARGV[1] = '*' and ARGV[2] = n to move the n oldest.
-- Returns the number of jobs moved.
local now = spool_now()
local now_s = spool_int(now)
local ids = spool_action_ids(KEYS[1])
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    moved = moved + spool_to_ready(KEYS[2], KEYS[3], id, now_s)
  end
end
if moved > 0 then
  spool_wake(KEYS[4])
end
return moved
