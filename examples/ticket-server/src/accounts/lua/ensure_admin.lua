-- Creates an admin account, or raises the account owning the email to ADMIN (atomic).
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: id for a new account, normalised email, password hash, created_at (ms)
-- Returns the admin account's id.
local base = KEYS[1]
local email_key = base .. 'email:' .. ARGV[2]
local id = redis.call('GET', email_key)
if id then
  redis.call('HSET', base .. 'user:' .. id, 'role', 'ADMIN')
  return id
end
redis.call('SET', email_key, ARGV[1])
redis.call('HSET', base .. 'user:' .. ARGV[1],
  'id', ARGV[1], 'email', ARGV[2], 'password_hash', ARGV[3], 'role', 'ADMIN',
  'created_at', ARGV[4])
return ARGV[1]
