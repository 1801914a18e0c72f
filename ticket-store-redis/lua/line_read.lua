-- The WAITING tickets with a place in line after ARGV[3] ('' = from the head), in line order,
-- at most ARGV[4], changing nothing. Reply: {user, place, ticket id, user, ...}, or false
-- when the session does not exist.
if redis.call('EXISTS', B .. 'def') == 0 then
  return false
end
local after = ARGV[3] == '' and '-inf' or ('(' .. ARGV[3])
local line = redis.call('ZRANGEBYSCORE', B .. 'line', after, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
local users = {}
for i = 1, #line, 2 do
  users[#users + 1] = line[i]
end
prefetch_tickets(users)
local out = {}
for i = 1, #line, 2 do
  local t = load_ticket(line[i])
  if t then
    out[#out + 1] = line[i]
    out[#out + 1] = line[i + 1]
    out[#out + 1] = t.id
  end
end
return out
