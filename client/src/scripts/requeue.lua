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
return spool_set_to_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], spool_action_ids(KEYS[1]), now_s)
