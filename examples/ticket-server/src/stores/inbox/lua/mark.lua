-- Marks one notification read (idempotent); answers its body, or nil when the user has none
-- with that number.
-- KEYS[1] number -> body (hash), KEYS[2] unread numbers (set). ARGV[1] the number.
local body = redis.call('HGET', KEYS[1], ARGV[1])
if not body then
  return false
end
redis.call('SREM', KEYS[2], ARGV[1])
return body
