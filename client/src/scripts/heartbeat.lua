-- heartbeat.lua: a worker process registers itself (and stays registered).
--
-- Writes the process hash (info JSON from the worker, busy jobs JSON, first
-- and last beat on Redis's clock) with a TTL, and indexes the process in the
-- processes set scored by its last beat; index entries whose hash expired
-- are dropped here, so dead processes vanish without a separate sweeper.
-- With ARGV[4] = 'stop' it removes the process instead (clean shutdown).
-- The reply carries the operator's signal for this process ('quiet' or
-- 'stop', written by process_signal.lua; '' for none), which the worker
-- carries out.
--
-- KEYS[1] processes zset  KEYS[2] this process's hash
-- ARGV[1] process id  ARGV[2] info JSON  ARGV[3] busy JSON  ARGV[4] ttl_ms | 'stop'
-- Returns {beat time (Redis ms), signal}.
local now = spool_now()
if ARGV[4] == 'stop' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return {now, ''}
end
local ttl = tonumber(ARGV[4])
redis.call('HSETNX', KEYS[2], 'started_ms', now)
redis.call('HSET', KEYS[2], 'info', ARGV[2], 'busy', ARGV[3], 'beat_ms', now)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
return {now, redis.call('HGET', KEYS[2], 'signal') or ''}
