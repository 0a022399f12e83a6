-- batch_open.lua: producer --add members--> batch (created on first call).
--
-- Creates the batch (batch_shared.lua for its keys) unless it exists, and
-- registers members as pending, in order. Called once per chunk of
-- members before they are enqueued; repeating a call changes nothing. A
-- sealed batch takes no more members.
--
-- KEYS[1] batch hash  KEYS[2] members  KEYS[3] ids  KEYS[4] the home
-- queue's batch index (ZSET uuid → created ms)
-- ARGV[1] kind (batch or chain)  ARGV[2] keep_ms  ARGV[3] callbacks (JSON
-- array of follow-up entries)  ARGV[4] description  ARGV[5] the uuid (the
-- index's member)  ARGV[6..] pairs: member id, member queue
-- Returns the number of members.
local now = spool_now()
if ARGV[1] ~= 'batch' and ARGV[1] ~= 'chain' then
  return redis.error_reply('ERR spool: batch kind must be batch or chain')
end
if not string.match(ARGV[2] or '', '^%d+$') or (#ARGV - 5) % 2 ~= 0 then
  return redis.error_reply('ERR spool: batch_open takes kind, keep_ms, callbacks, description, uuid, then id/queue pairs')
end
for i = 6, #ARGV do
  if ARGV[i] == '' or string.find(ARGV[i], '"', 1, true) then
    return redis.error_reply('ERR spool: member ids and queues must be non-empty and without quotes')
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'created_ms', spool_int(now), 'keep_ms', ARGV[2],
    'callbacks', ARGV[3], 'description', ARGV[4], 'done', 0, 'dead', 0, 'cancelled', 0)
  redis.call('ZADD', KEYS[4], now, ARGV[5])
  -- The index forgets batches long expired (their keys are gone).
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 4 * SPOOL_BATCH_IDLE_MS)
elseif redis.call('HEXISTS', KEYS[1], 'sealed_ms') == 1 then
  return redis.error_reply('ERR spool: the batch is sealed; it takes no more members')
end
for i = 6, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], 'pending"0') == 1 then
    redis.call('RPUSH', KEYS[3], ARGV[i] .. '"' .. ARGV[i + 1])
  end
end
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], SPOOL_BATCH_IDLE_MS)
end
return redis.call('HLEN', KEYS[2])
