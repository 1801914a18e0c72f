-- Audit records: ARGV[3] 'session' | 'hold' | 'user', ARGV[4] hold id or user, ARGV[5] limit.
-- 'session' replies with stream entries {id, {'r', record, ...}}, oldest first, at most
-- `limit` entries; 'hold' and 'user' reply with packed records: a hold's in order, a user's
-- grouped by subject.
local scope, subject, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
if scope == 'session' then
  return redis.call('XRANGE', B .. 'audit', '-', '+', 'COUNT', limit)
end
-- "<entry id>/<index>" references from the `aud` of the subjects in scope.
local refs = {}
if scope == 'hold' then
  local h = load_hold(subject)
  refs[1] = h and h[H_AUD] or ''
else
  local t = load_ticket(subject)
  refs[1] = t and t.aud or ''
  local ids = {}
  for id in string.gmatch(load_user_holds(subject), '%S+') do
    ids[#ids + 1] = id
  end
  prefetch_holds(ids)
  for _, id in ipairs(ids) do
    refs[#refs + 1] = holds[id] and holds[id][H_AUD] or ''
  end
end
local out = {}
for _, aud in ipairs(refs) do
  for eid, k in string.gmatch(aud, '(%S+)/(%d+)') do
    if #out >= limit and scope == 'hold' then
      return out
    end
    local e = redis.call('XRANGE', B .. 'audit', eid, eid)
    if e[1] then
      local record = e[1][2][tonumber(k) * 2 + 2]
      if record then
        out[#out + 1] = record
      end
    end
  end
end
return out
