-- Where a user's ticket stands. ARGV[3] now, ARGV[4] actor, ARGV[5] user.
-- Reply: {'ok', ticket, rank (-1 unless waiting in line), line length, pre-queue length,
-- active, admissions in the last minute, units available, units held} | {'nf'}.
local actor, user = ARGV[4], ARGV[5]
settle(ARGV[3], actor)
local t = ticket_reply(user)
if not t[1] then
  return { 'nf' }
end
local rank = -1
if t[2] == 'WAITING' and t[4] then
  rank = redis.call('ZRANK', B .. 'line', user) or -1
end
local available, held = stock_totals()
return { 'ok', t, rank, redis.call('ZCARD', B .. 'line'), redis.call('LLEN', B .. 'pq'),
  redis.call('ZCARD', B .. 'act'), redis.call('ZCARD', B .. 'adm'), available, held }
