-- Revokes families (atomic): with ARGV[1] = 'family', the family ARGV[2]; with
-- ARGV[1] = 'user', every family of user ARGV[2] (and forgets families already expired)
-- and bumps the user's access-token version (logout everywhere).
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- Returns how many families were marked revoked.
local base = KEYS[1]
local function revoke(family)
  local fam_key = base .. 'fam:' .. family
  if redis.call('EXISTS', fam_key) == 1 then
    redis.call('HSET', fam_key, 'revoked', '1')
    return 1
  end
  return 0
end
if ARGV[1] == 'family' then
  return revoke(ARGV[2])
end
local user_key = base .. 'user:' .. ARGV[2]
if redis.call('EXISTS', user_key) == 1 then
  redis.call('HINCRBY', user_key, 'tv', 1)
end
local families_key = base .. 'ufam:' .. ARGV[2]
local n = 0
for _, family in ipairs(redis.call('SMEMBERS', families_key)) do
  if revoke(family) == 1 then
    n = n + 1
  else
    redis.call('SREM', families_key, family)
  end
end
return n
