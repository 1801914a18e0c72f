-- Leaves the queue. ARGV[3] now, ARGV[4] actor, ARGV[5] user.
-- Reply: {'ok', ticket} | {'err', refusal JSON} | {'nf'}.
local now_s, actor, user = ARGV[3], ARGV[4], ARGV[5]
settle(now_s, actor)
local t = load_ticket(user)
if not t then
  commit()
  return { 'nf' }
end
local st = t.st
if st == 'LEFT' then
  commit()
  return { 'ok', ticket_reply(t) }
elseif st == 'WAITING' then
  if t.seq ~= '' then
    redis.call('ZREM', B .. 'line', user)
  else
    redis.call('LREM', B .. 'pq', 0, user)
    redis.call('INCR', B .. 'pqv')
  end
elseif st == 'ACTIVE' then
  redis.call('ZREM', B .. 'act', user)
else
  commit()
  return { 'err', '{"code":"NOT_IN_QUEUE"}' }
end
t.st = 'LEFT'
save_ticket(user, t)
audit(now_s, actor, 't', t.id, user, st, 'LEFT', 'left the queue', nil)
commit()
return { 'ok', ticket_reply(t) }
