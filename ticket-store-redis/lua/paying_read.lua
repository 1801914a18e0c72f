-- Checkouts to poll, changing nothing: up to ARGV[4] PAYING holds whose TTL ends at or before
-- ARGV[3] (ms), soonest expiry first, ties by id. Read from the expiry index (see
-- lib/commit.lua), which lists every live hold under the second of its expiry until the
-- sweeper expires it, so past-due holds not swept yet are found too. Holds inside one second
-- are in no particular order: the walk finishes the second in which the limit is reached,
-- then sorts. No write, no commit(). Reply: { {id, hold}, ... }.
local before_s, limit = ARGV[3], tonumber(ARGV[4])
local before = tonumber(before_s)
local found, seen = {}, {} -- seen: an id listed twice is reported once

if limit > 0 then
  for _, sec in ipairs(redis.call('ZRANGEBYSCORE', K_EXPB, '-inf', expiry_second(before_s))) do
    if #found >= limit then
      break
    end
    local ids = redis.call('LRANGE', B .. 'exp:' .. sec, 0, -1)
    prefetch_holds(ids)
    for _, id in ipairs(ids) do
      local h = holds[id]
      if h and not seen[id] and h[H_STATE] == 'PAYING' then
        local exp = tonumber(h[H_EXP])
        if exp <= before then
          seen[id] = true
          found[#found + 1] = { exp, id }
        end
      end
    end
  end
end

table.sort(found, function(a, b)
  if a[1] ~= b[1] then
    return a[1] < b[1]
  end
  return a[2] < b[2]
end)
local out = {}
for i = 1, math.min(limit, #found) do
  local id = found[i][2]
  out[i] = { id, pack_hold(holds[id]) }
end
return out
