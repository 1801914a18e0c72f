-- Leaves the queue. ARGV[3] now, ARGV[4] actor, ARGV[5] user.
-- Reply: {'ok', ticket} | {'err', refusal JSON} | {'nf'}.
local now_s, actor, user = ARGV[3], ARGV[4], ARGV[5]
settle(now_s, actor)
local tk = B .. 't:' .. user
local t = redis.call('HMGET', tk, 'st', 'id', 'seq', 'aud')
local st = t[1]
if not st then
  return { 'nf' }
elseif st == 'LEFT' then
  return { 'ok', ticket_reply(user) }
elseif st == 'WAITING' then
  if t[3] then
    redis.call('ZREM', B .. 'line', user)
  else
    redis.call('LREM', B .. 'pq', 0, user)
    redis.call('INCR', B .. 'pqv')
  end
elseif st == 'ACTIVE' then
  redis.call('ZREM', B .. 'act', user)
else
  return { 'err', '{"code":"NOT_IN_QUEUE"}' }
end
local eid = audit(now_s, actor, 't', t[2], user, st, 'LEFT', 'left the queue', nil)
redis.call('HSET', tk, 'st', 'LEFT', 'aud', with_entry(t[4], eid))
return { 'ok', ticket_reply(user) }
