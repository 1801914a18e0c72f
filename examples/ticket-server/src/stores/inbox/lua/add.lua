-- Stores one notification unless its change is stored already; answers its number.
-- KEYS[1] the user's counter, KEYS[2] change key -> number (hash), KEYS[3] numbers (sorted
-- set), KEYS[4] number -> body (hash), KEYS[5] unread numbers (set).
-- ARGV[1] the change key (`<session>:<seq>`), ARGV[2] the body (JSON).
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  return tonumber(existing)
end
local n = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], n)
redis.call('HSET', KEYS[4], n, ARGV[2])
redis.call('ZADD', KEYS[3], n, n)
redis.call('SADD', KEYS[5], n)
return n
