-- An admin changes an account's role, tiers or blocked flag, with its audit record, in one
-- atomic step. Every refusal writes nothing, except that an admin made before the set of
-- admins existed is added to it.
-- KEYS[1]: key base `<prefix>:{accounts}:`
-- ARGV: what ('role' | 'tiers' | 'blocked'), actor id, target id, new stored value
--       (role name; tiers joined by ','; '0' or '1'), now (ms)
-- Returns {'ok', record json} or {'same'}, {'not_found'}, {'own'}, {'last_admin'},
-- {'admin'}.
local base = KEYS[1]
local what, actor, target, value, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local user_key = base .. 'user:' .. target
local admins = base .. 'admins'
local role = redis.call('HGET', user_key, 'role')
if not role then
  return {'not_found'}
end
local defaults = {role = role, tiers = '', blocked = '0'}
local from = redis.call('HGET', user_key, what) or defaults[what]
if what ~= 'tiers' and actor == target then
  return {'own'}
end
if from == value then
  return {'same'}
end
local function log_out_everywhere()
  redis.call('HINCRBY', user_key, 'tv', 1)
  for _, family in ipairs(redis.call('SMEMBERS', base .. 'ufam:' .. target)) do
    local fam_key = base .. 'fam:' .. family
    if redis.call('EXISTS', fam_key) == 1 then
      redis.call('HSET', fam_key, 'revoked', '1')
    end
  end
end
if what == 'role' then
  if role == 'ADMIN' then
    redis.call('SADD', admins, target)
    if redis.call('SCARD', admins) <= 1 then
      return {'last_admin'}
    end
    redis.call('SREM', admins, target)
  end
  if value == 'ADMIN' then
    redis.call('SADD', admins, target)
  end
  redis.call('HINCRBY', user_key, 'tv', 1)
elseif what == 'blocked' then
  if value == '1' and role == 'ADMIN' then
    return {'admin'}
  end
  if value == '1' then
    log_out_everywhere()
  end
end
redis.call('HSET', user_key, what, value)
local function shown(v)
  if what == 'blocked' then
    if v == '1' then return 'true' end
    return 'false'
  end
  return v
end
local seq = redis.call('INCR', base .. 'audit_seq')
local record = cjson.encode({
  seq = tostring(seq), at = now, actor = actor, target = target,
  change = string.upper(what), from = shown(from), to = shown(value),
})
redis.call('ZADD', base .. 'audit', seq, record)
return {'ok', record}
