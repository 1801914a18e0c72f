-- Leaves the queue: a batch of requests applied in order, written with one commit.
-- ARGV[3] number of requests; each is 3 fields: now, actor (JSON), user.
-- Reply per request: {'ok', ticket} | {'err', refusal JSON} | {'nf'}.
-- A user named twice in one batch leaves once; the second request sees the LEFT ticket.
local n = tonumber(ARGV[3])
local users = {}
for i = 0, n - 1 do
  users[#users + 1] = ARGV[6 + i * 3]
end
prefetch_tickets(users)
local out = {}
for i = 0, n - 1 do
  local o = 3 + i * 3
  local now_s, actor, user = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  settle(now_s, actor)
  local t = load_ticket(user)
  local st = t and t.st
  if not t then
    out[#out + 1] = { 'nf' }
  elseif st == 'LEFT' then
    out[#out + 1] = { 'ok', ticket_reply(t) }
  elseif st == 'WAITING' or st == 'ACTIVE' then
    if st == 'ACTIVE' then
      -- Deferred to commit: a later settle in this batch may still list the user as
      -- active, and skips the ticket because it is no longer ACTIVE.
      zrem(K_ACT, user)
    elseif t.seq ~= '' then
      zrem(B .. 'line', user)
    else
      redis.call('LREM', B .. 'pq', 0, user)
      redis.call('INCR', B .. 'pqv')
    end
    t.st = 'LEFT'
    save_ticket(user, t)
    audit(now_s, actor, 't', t.id, user, st, 'LEFT', 'left the queue', nil)
    out[#out + 1] = { 'ok', ticket_reply(t) }
  else
    out[#out + 1] = { 'err', '{"code":"NOT_IN_QUEUE"}' }
  end
end
commit()
return out
