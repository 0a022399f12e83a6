-- batch_seal.lua: producer --every member enqueued--> batch sealed.
--
-- Once sealed, a batch completes when its last member ends; if every
-- member already ended, the callbacks due are triggered here
-- (batch_shared.lua). Sealing twice changes nothing. A batch whose
-- producer died before this stays unsealed (and never completes).
--
-- KEYS as batch_shared.lua says.
-- ARGV[1] batch id
-- Returns how many callbacks went to the home outbox, or an error when
-- the batch does not exist.
local now = spool_now()
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('ERR spool: no such batch (it was never opened or has expired)')
end
if redis.call('HEXISTS', KEYS[1], 'sealed_ms') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'sealed_ms', spool_int(now))
return spool_batch_settle(now, ARGV[1])
