-- Audit records: ARGV[3] 'session' | 'hold' | 'user', ARGV[4] hold id or user, ARGV[5] limit.
-- 'session' replies with stream entries {id, {'r', record, ...}}, oldest first, at most
-- `limit` entries; 'hold' and 'user' reply with packed records: a hold's in order, a user's
-- grouped by subject.
local scope, subject, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
if scope == 'session' then
  return redis.call('XRANGE', B .. 'audit', '-', '+', 'COUNT', limit)
end
-- Entry ids from the `aud` of each subject in scope, with the subject's kind and id (or owner
-- for tickets): the records of that subject are picked out of each entry.
local wanted = {}
if scope == 'hold' then
  local h = load_hold(subject)
  wanted[1] = { h and h[H_AUD] or '', 'h', subject, nil }
else
  local t = load_ticket(subject)
  wanted[1] = { t and t.aud or '', 't', nil, subject }
  local ids = user_hold_ids(subject)
  prefetch_holds(ids)
  for _, id in ipairs(ids) do
    wanted[#wanted + 1] = { holds[id] and holds[id][H_AUD] or '', 'h', id, nil }
  end
end
local out = {}
for _, w in ipairs(wanted) do
  local seen = {}
  for eid in string.gmatch(w[1], '%S+') do
    if not seen[eid] then
      seen[eid] = true
      local e = redis.call('XRANGE', B .. 'audit', eid, eid)
      local fields = e[1] and e[1][2] or {}
      for j = 2, #fields, 2 do
        local record = fields[j]
        local kind, subj, owner = string.match(record, '^[^\31]*\31[^\31]*\31([^\31]*)\31([^\31]*)\31([^\31]*)\31')
        if kind == w[2] and (w[3] == nil or subj == w[3]) and (w[4] == nil or owner == w[4]) then
          if scope == 'hold' and #out >= limit then
            return out
          end
          out[#out + 1] = record
        end
      end
    end
  end
end
return out
