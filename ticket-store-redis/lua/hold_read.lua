-- Reads holds: ARGV[3] 'one' with ARGV[4] a hold id -> hold (all fields nil if missing);
-- ARGV[3] 'user' with ARGV[4] a user -> { {id, hold}, ... } in creation order.
if ARGV[3] == 'one' then
  return hold_reply(ARGV[4])
end
local out = {}
for _, id in ipairs(redis.call('LRANGE', B .. 'uh:' .. ARGV[4], 0, -1)) do
  out[#out + 1] = { id, hold_reply(id) }
end
return out
