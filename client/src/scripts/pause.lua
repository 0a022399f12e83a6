-- pause.lua: queue --operator pause--> paused. Workers stop fetching from
-- it (fetch.lua checks the flag); enqueues still land. The caller then adds
-- the queue to the registry with register_queues.lua (another hash slot).
--
-- KEYS[1] paused flag
-- Returns 1.
redis.call('SET', KEYS[1], '1')
return 1
