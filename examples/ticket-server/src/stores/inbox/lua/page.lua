-- A page, newest first, and the unread count, read at one instant.
-- KEYS[1] numbers (sorted set), KEYS[2] number -> body (hash), KEYS[3] unread numbers (set).
-- ARGV[1] the exclusive upper bound (`(<n>` or `+inf`), ARGV[2] the page size.
-- Answers strings: the unread count, then per notification its number, body and 1/0 unread.
local ns = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = { tostring(redis.call('SCARD', KEYS[3])) }
for _, n in ipairs(ns) do
  out[#out + 1] = tostring(n)
  out[#out + 1] = redis.call('HGET', KEYS[2], n) or ''
  out[#out + 1] = tostring(redis.call('SISMEMBER', KEYS[3], n))
end
return out
