-- pause.lua: queue --operator pause--> paused. Workers stop fetching from
-- it (fetch.lua checks the flag); enqueues still land. The queue joins the
-- registry so a paused empty queue still shows up.
--
-- KEYS[1] paused flag  KEYS[2] queue registry
-- ARGV[1] queue name
-- Returns 1.
redis.call('SET', KEYS[1], '1')
redis.call('SADD', KEYS[2], ARGV[1])
return 1
