-- Creates an account unless its email is taken (one script: atomic).
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: id, normalised email, password hash, role, created_at (ms)
-- Returns 1 (created) or 0 (email taken, nothing written).
local base = KEYS[1]
local email_key = base .. 'email:' .. ARGV[2]
if redis.call('EXISTS', email_key) == 1 then
  return 0
end
redis.call('SET', email_key, ARGV[1])
redis.call('HSET', base .. 'user:' .. ARGV[1],
  'id', ARGV[1], 'email', ARGV[2], 'password_hash', ARGV[3], 'role', ARGV[4],
  'created_at', ARGV[5], 'tv', '0', 'blocked', '0', 'tiers', '')
-- the set of admins decides "the last admin" atomically (change_user.lua)
if ARGV[4] == 'ADMIN' then
  redis.call('SADD', base .. 'admins', ARGV[1])
end
return 1
