-- Opens a top-up unless the user's client key already opened one.
-- KEYS[1] the user's top-ups hash: `c:<client key>` → id, `t:<id>` → JSON, `v:<id>` → version
-- ARGV[1] `c:<client key>`, ARGV[2] top-up id, ARGV[3] top-up JSON (version 0)
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return {'dup', redis.call('HGET', KEYS[1], 't:' .. id) or ''} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 't:' .. ARGV[2], ARGV[3], 'v:' .. ARGV[2], '0')
return {'ok', ARGV[3]}
