-- pause.lua: queue --operator pause--> paused. Workers stop fetching from
-- it (fetch.lua checks the flag); enqueues still land. The caller then adds
-- the queue to the registry with register_queues.lua (another hash slot).
-- A `paused` event (level terminal) names the actor.
--
-- KEYS[1] paused flag  KEYS[2] events  KEYS[3] settings
-- ARGV[1] actor
-- Returns 1.
redis.call('SET', KEYS[1], '1')
spool_event(spool_events(KEYS[2], KEYS[3]), SPOOL_TERMINAL, 'paused', '', nil, nil, nil,
  ARGV[1], 'queue')
return 1
