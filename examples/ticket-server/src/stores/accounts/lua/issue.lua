-- Stores a new refresh token (by hash) in a family of a user (atomic; all checks before
-- any write).
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: user id, token hash (hex), family id, expires_at (ms), ttl of the records (ms),
--       the family's absolute end (ms; kept for a new family, the stored one wins)
-- Returns 'ok', 'no_user', 'foreign_family' or 'exists'.
local base = KEYS[1]
local user, hash, family, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])

local function extend(key)
  -- a key without TTL (-1, just created) or with a shorter one lives at least `ttl` ms
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

if redis.call('EXISTS', base .. 'user:' .. user) == 0 then
  return 'no_user'
end
local fam_key = base .. 'fam:' .. family
local owner = redis.call('HGET', fam_key, 'user')
if owner and owner ~= user then
  return 'foreign_family'
end
local token_key = base .. 'rt:' .. hash
if redis.call('EXISTS', token_key) == 1 then
  return 'exists'
end
if not owner then
  redis.call('HSET', fam_key, 'user', user, 'revoked', '0', 'ends', ARGV[6])
end
-- a token never outlives its family's absolute end
local expires_at = tonumber(ARGV[4])
local ends = tonumber(redis.call('HGET', fam_key, 'ends'))
if ends and ends < expires_at then
  expires_at = ends
end
redis.call('HSET', token_key, 'user', user, 'family', family,
  'expires_at', string.format('%.0f', expires_at), 'used', '0')
redis.call('PEXPIRE', token_key, ttl)
extend(fam_key)
local families = base .. 'ufam:' .. user
redis.call('SADD', families, family)
extend(families)
return 'ok'
