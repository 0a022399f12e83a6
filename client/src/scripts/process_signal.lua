-- process_signal.lua: an operator asks a live worker process to go quiet
-- (stop fetching, finish what it runs) or to stop (graceful shutdown).
--
-- The signal is a field of the process hash, read by the process's next
-- heartbeat (heartbeat.lua returns it); it lives and dies with that hash.
-- 'stop' is never downgraded to 'quiet'. A process that is not registered
-- (gone, or never there) is left alone.
--
-- KEYS[1] the process's hash
-- ARGV[1] 'quiet' | 'stop'
-- Returns 1 when the signal is stored, 0 when there is no such process.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[1] == 'quiet' and redis.call('HGET', KEYS[1], 'signal') == 'stop' then
  return 1
end
redis.call('HSET', KEYS[1], 'signal', ARGV[1])
return 1
