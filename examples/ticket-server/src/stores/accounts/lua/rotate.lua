-- Rotates a refresh token with reuse detection (atomic; only the reuse answer and success
-- write).
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: old hash (hex), new hash (hex), now (ms), new expires_at (ms), ttl of the new
--       records (ms)
-- Returns {'ok', user id, role, token version, new expires_at (ms)} or {'unknown'},
-- {'reused'}, {'revoked'}, {'expired'}, {'exists'}.
local base = KEYS[1]
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[5])

local function extend(key)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

local old_key = base .. 'rt:' .. ARGV[1]
local t = redis.call('HMGET', old_key, 'user', 'family', 'expires_at', 'used')
local user, family, expires_at, used = t[1], t[2], t[3], t[4]
if not user or not family or not expires_at or not used then
  return {'unknown'}
end
local fam_key = base .. 'fam:' .. family
if used == '1' then
  -- a rotated token presented again: revoke the whole family
  if redis.call('EXISTS', fam_key) == 1 then
    redis.call('HSET', fam_key, 'revoked', '1')
  end
  return {'reused'}
end
-- a missing family record counts as revoked
local fam = redis.call('HMGET', fam_key, 'revoked', 'ends')
if fam[1] ~= '0' then
  return {'revoked'}
end
-- the family's absolute end (nil for families stored before absolute lifetimes)
local ends = tonumber(fam[2])
if now >= tonumber(expires_at) or (ends and now >= ends) then
  return {'expired'}
end
local u = redis.call('HMGET', base .. 'user:' .. user, 'role', 'tv')
local role = u[1]
if not role then
  return {'unknown'}
end
local new_expires = tonumber(ARGV[4])
if ends and ends < new_expires then
  new_expires = ends
end
new_expires = string.format('%.0f', new_expires)
local new_key = base .. 'rt:' .. ARGV[2]
if redis.call('EXISTS', new_key) == 1 then
  return {'exists'}
end
redis.call('HSET', old_key, 'used', '1')
redis.call('HSET', new_key, 'user', user, 'family', family, 'expires_at', new_expires, 'used', '0')
redis.call('PEXPIRE', new_key, ttl)
extend(fam_key)
extend(base .. 'ufam:' .. user)
return {'ok', user, role, u[2] or '0', new_expires}
