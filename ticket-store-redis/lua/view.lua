-- Where a user's ticket stands. ARGV[3] now, ARGV[4] actor, ARGV[5] user.
-- Reply: {'ok', ticket, rank (-1 unless waiting in line), line length, pre-queue length,
-- active, admissions in the last minute, units available, units held} | {'nf'}.
local user = ARGV[5]
settle(ARGV[3], ARGV[4])
commit()
local t = load_ticket(user)
if not t then
  return { 'nf' }
end
local rank = -1
if t.st == 'WAITING' and t.seq ~= '' then
  rank = redis.call('ZRANK', B .. 'line', user) or -1
end
local available, held = stock_totals()
return { 'ok', ticket_reply(t), rank, redis.call('ZCARD', B .. 'line'), redis.call('LLEN', B .. 'pq'),
  redis.call('ZCARD', B .. 'act'), redis.call('ZCARD', B .. 'adm'), available, held }
