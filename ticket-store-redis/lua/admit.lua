-- Admits the next users in line as far as the pacing allows.
-- ARGV[3] now, ARGV[4] actor, ARGV[5] max active, ARGV[6] max per minute,
-- ARGV[7] units per user, ARGV[8] admission expiry.
-- Reply: {'ok', limit, {{user, ticket}, ...}} | {'draw'} (no draw yet: the caller draws).
local now_s, actor = ARGV[3], ARGV[4]
local max_active, max_rate = tonumber(ARGV[5]), tonumber(ARGV[6])
local per_user, exp_s = math.max(tonumber(ARGV[7]), 1), ARGV[8]
settle(now_s, actor)
commit()
if redis.call('EXISTS', B .. 'draw') == 0 then
  return { 'draw' }
end
local active = redis.call('ZCARD', B .. 'act')
local available = stock_totals()
local waiting = redis.call('ZCARD', B .. 'line')
-- The smallest bound wins; ties go to the first, as in the in-memory backend.
local bounds = {
  { waiting, 'empty' },
  { math.max(max_active - active, 0), 'active_cap' },
  { math.max(max_rate - redis.call('ZCARD', B .. 'adm'), 0), 'rate' },
  { math.max(math.floor(available / per_user) - active, 0), 'stock' },
}
local n, limit = bounds[1][1], bounds[1][2]
for i = 2, #bounds do
  if bounds[i][1] < n then
    n, limit = bounds[i][1], bounds[i][2]
  end
end
if n == waiting and n > 0 then
  limit = 'empty'
end
local admitted = {}
if n > 0 then
  local popped = redis.call('ZPOPMIN', B .. 'line', n)
  local users = {}
  for i = 1, #popped, 2 do
    users[#users + 1] = popped[i]
  end
  prefetch_tickets(users)
  for i = 1, #popped, 2 do
    local user = popped[i]
    local t = load_ticket(user)
    if t then
      t.st, t.aat, t.exp = 'ACTIVE', now_s, exp_s
      save_ticket(user, t)
      zadd(B .. 'act', exp_s, user)
      zadd(B .. 'adm', now_s, t.id)
      audit(now_s, actor, 't', t.id, user, 'WAITING', 'ACTIVE', 'admitted', nil)
      admitted[#admitted + 1] = user
    end
  end
end
commit()
local out = {}
for _, user in ipairs(admitted) do
  out[#out + 1] = { user, ticket_reply(tickets[user]) }
end
return { 'ok', limit, out }
