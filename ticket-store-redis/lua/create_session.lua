-- Creates a session with all stock available, unless it exists.
-- ARGV[3] event id, ARGV[4] session JSON, ARGV[5] number of grades, then grade and capacity
-- pairs, then seat ids. Reply: 'created' | 'same' (identical definition) | 'conflict'.
local def = redis.call('HMGET', B .. 'def', 'event', 'json')
if def[1] then
  if def[1] == ARGV[3] and def[2] == ARGV[4] then
    return 'same'
  end
  return 'conflict'
end
redis.call('HSET', B .. 'def', 'event', ARGV[3], 'json', ARGV[4])
local grades = tonumber(ARGV[5])
for i = 0, grades - 1 do
  local g, cap = ARGV[6 + 2 * i], ARGV[7 + 2 * i]
  redis.call('HSET', B .. 'stock', 'a:' .. g, cap, 's:' .. g, 0, 'c:' .. g, cap)
end
local first = 6 + 2 * grades
local batch = {}
for i = first, #ARGV do
  batch[#batch + 1] = ARGV[i]
  batch[#batch + 1] = 'A'
  if #batch >= 1000 then
    redis.call('HSET', B .. 'seats', unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('HSET', B .. 'seats', unpack(batch))
end
return 'created'
