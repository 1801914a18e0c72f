-- Audit records: ARGV[3] 'session' | 'hold' | 'user', ARGV[4] hold id or user, ARGV[5] limit.
-- Reply: stream entries {id, {field, value, ...}}: the session's oldest first; a hold's in
-- order; a user's grouped by subject (the caller sorts them).
local scope, subject, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
if scope == 'session' then
  return redis.call('XRANGE', B .. 'audit', '-', '+', 'COUNT', limit)
end
-- Entry ids from the `aud` fields of the subjects in scope.
local lists = {}
if scope == 'hold' then
  lists[1] = redis.call('HGET', B .. 'h:' .. subject, 'aud')
else
  lists[1] = redis.call('HGET', B .. 't:' .. subject, 'aud')
  for _, id in ipairs(redis.call('LRANGE', B .. 'uh:' .. subject, 0, -1)) do
    lists[#lists + 1] = redis.call('HGET', B .. 'h:' .. id, 'aud')
  end
end
local out = {}
for _, aud in ipairs(lists) do
  for eid in string.gmatch(aud or '', '%S+') do
    if #out >= limit and scope == 'hold' then
      return out
    end
    local e = redis.call('XRANGE', B .. 'audit', eid, eid)
    if e[1] then
      out[#out + 1] = e[1]
    end
  end
end
return out
