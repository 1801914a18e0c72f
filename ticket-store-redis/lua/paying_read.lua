-- Checkouts to poll, changing nothing: up to ARGV[4] PAYING holds whose TTL ends at or before
-- ARGV[3] (ms), soonest expiry first, ties by id. Read from the `paying` index (score: expiry,
-- member: hold id, kept by apply() in lib/commit.lua in the step that moves a hold to or from
-- PAYING), so the cost is O(log n + limit) whatever the number of live holds; past-due holds
-- not swept yet are still PAYING and listed. No write, no commit(). Reply: { {id, hold}, ... }.
local before_s, limit = ARGV[3], tonumber(ARGV[4])
local found = {}
if limit > 0 then
  local ids = redis.call('ZRANGE', K_PAYING, '-inf', before_s, 'BYSCORE', 'LIMIT', 0, limit)
  prefetch_holds(ids)
  for _, id in ipairs(ids) do
    if holds[id] and holds[id][H_STATE] == 'PAYING' then
      found[#found + 1] = { tonumber(holds[id][H_EXP]), id }
    end
  end
end

local out = {}
for i = 1, math.min(limit, #found) do
  local id = found[i][2]
  out[i] = { id, pack_hold(holds[id]) }
end
return out
