-- Reads holds: ARGV[3] 'one' with ARGV[4] a hold id -> packed hold or nil;
-- ARGV[3] 'user' with ARGV[4] a user -> { {id, hold}, ... } in creation order.
if ARGV[3] == 'one' then
  return hold_reply(ARGV[4])
end
local ids = user_hold_ids(ARGV[4])
prefetch_holds(ids)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = { id, hold_reply(id) }
end
return out
