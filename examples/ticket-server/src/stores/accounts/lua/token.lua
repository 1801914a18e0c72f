-- Reads a refresh token record and its family's revoked flag in one step.
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: token hash (hex)
-- Returns {} (unknown) or {user, family, expires_at, used, revoked}.
local base = KEYS[1]
local t = redis.call('HMGET', base .. 'rt:' .. ARGV[1], 'user', 'family', 'expires_at', 'used')
if not t[1] or not t[2] or not t[3] or not t[4] then
  return {}
end
local revoked = redis.call('HGET', base .. 'fam:' .. t[2], 'revoked')
if revoked ~= '0' then
  revoked = '1'
end
return {t[1], t[2], t[3], t[4], revoked}
