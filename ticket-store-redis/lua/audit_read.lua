-- Audit records: ARGV[3] 'session' | 'hold' | 'user', ARGV[4] hold id or user, ARGV[5] limit.
-- Reply: stream entries {id, {field, value, ...}}, oldest first.
local scope, subject, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
if scope == 'session' then
  return redis.call('XRANGE', B .. 'audit', '-', '+', 'COUNT', limit)
end
local index = (scope == 'hold') and (B .. 'ha:' .. subject) or (B .. 'ua:' .. subject)
local out = {}
for _, eid in ipairs(redis.call('LRANGE', index, 0, -1)) do
  if #out >= limit then
    break
  end
  local e = redis.call('XRANGE', B .. 'audit', eid, eid)
  if e[1] then
    out[#out + 1] = e[1]
  end
end
return out
