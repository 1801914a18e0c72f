-- A page of the session's or of one hold's audit trail, changing nothing. Records sort by
-- (at, id), which is their id order (ids are AuditId::sequenced, see lib/feed.lua).
-- ARGV[3] 'session' | 'hold', ARGV[4] the hold id (hold scope), ARGV[5] 'asc' | 'desc',
-- ARGV[6] the cursor's record id (32 hex digits, '' = from the start), ARGV[7] the limit.
-- Reply: the packed records, in order.
local scope, hold, order, after, limit = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local ids
if scope == 'session' then
  if order == 'asc' then
    ids = redis.call('ZRANGEBYLEX', K_ALOG, after == '' and '-' or ('(' .. after), '+', 'LIMIT', 0, limit)
  else
    ids = redis.call('ZREVRANGEBYLEX', K_ALOG, after == '' and '+' or ('(' .. after), '-', 'LIMIT', 0, limit)
  end
else
  -- A hold has a handful of records (its transitions and gate scans): all of them, sorted.
  local h = load_hold(hold)
  local all = {}
  for id in string.gmatch(h and h[H_AUD] or '', '%S+') do
    if after == '' or (order == 'asc' and id > after) or (order == 'desc' and id < after) then
      all[#all + 1] = id
    end
  end
  if order == 'asc' then
    table.sort(all)
  else
    table.sort(all, function(a, b) return a > b end)
  end
  ids = {}
  for i = 1, math.min(limit, #all) do
    ids[i] = all[i]
  end
end
if #ids == 0 then
  return {}
end
return redis.call('HMGET', K_AREC, unpack(ids))
