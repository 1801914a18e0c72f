-- Creates the start-up admin, or sets a new password on the admin owning the email; never
-- promotes an account that is not an admin (atomic; the refusal writes nothing).
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: id for a new account, normalised email, password hash, created_at (ms)
-- Returns {'ok', id} or {'not_admin'}.
local base = KEYS[1]
local email_key = base .. 'email:' .. ARGV[2]
local id = redis.call('GET', email_key)
if id then
  local user_key = base .. 'user:' .. id
  if redis.call('HGET', user_key, 'role') ~= 'ADMIN' then
    return {'not_admin'}
  end
  -- a password change logs out everywhere: token version bumped, every family revoked
  redis.call('HSET', user_key, 'password_hash', ARGV[3])
  redis.call('HINCRBY', user_key, 'tv', 1)
  redis.call('SADD', base .. 'admins', id)
  for _, family in ipairs(redis.call('SMEMBERS', base .. 'ufam:' .. id)) do
    local fam_key = base .. 'fam:' .. family
    if redis.call('EXISTS', fam_key) == 1 then
      redis.call('HSET', fam_key, 'revoked', '1')
    end
  end
  return {'ok', id}
end
redis.call('SET', email_key, ARGV[1])
redis.call('HSET', base .. 'user:' .. ARGV[1],
  'id', ARGV[1], 'email', ARGV[2], 'password_hash', ARGV[3], 'role', 'ADMIN',
  'created_at', ARGV[4], 'tv', '0', 'blocked', '0', 'tiers', '')
redis.call('SADD', base .. 'admins', ARGV[1])
return {'ok', ARGV[1]}
