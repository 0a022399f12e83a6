-- outbox_done.lua: follow-ups moved into their queues leave the outbox.
--
-- The mover (`Runtime::move_follow_ups`) reads the head of a queue's
-- outbox, enqueues each follow-up into its queue with its id as the
-- uniqueness key (another slot, another script), then removes the entries
-- here. A crash between the two steps leaves them in the outbox: the next
-- move enqueues them again and the uniqueness key refuses the duplicates.
--
-- KEYS[1] outbox
-- ARGV the entries moved, as read
-- Returns how many were removed.
local removed = 0
for _, entry in ipairs(ARGV) do
  removed = removed + redis.call('LREM', KEYS[1], 1, entry)
end
return removed
