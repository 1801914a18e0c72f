-- Where users' tickets stand: a batch of requests, answered in order.
-- ARGV[3] actor (JSON; the system actor that expires ACTIVE tickets past their TTL while
-- settling), ARGV[4] number of requests; each is 2 fields: now, user.
-- Reply per request: {'ok', ticket, rank (-1 unless waiting in line), line length,
-- pre-queue length, active, admissions in the last minute, units available, units held} |
-- {'nf'}.
-- Each request sees the queue as settled at its own instant; the figures shared by every
-- request of one instant (lengths, stock) are read once per instant.
local actor, n = ARGV[3], tonumber(ARGV[4])
local users = {}
for i = 0, n - 1 do
  users[#users + 1] = ARGV[6 + i * 2]
end
prefetch_tickets(users)
local out = {}
local figures, figures_at = nil, nil
for i = 0, n - 1 do
  local now_s, user = ARGV[5 + i * 2], ARGV[6 + i * 2]
  settle(now_s, actor)
  local t = load_ticket(user)
  if not t then
    out[#out + 1] = { 'nf' }
  else
    if figures_at ~= now_s then
      local available, held = stock_totals()
      figures = { redis.call('ZCARD', B .. 'line'), redis.call('LLEN', B .. 'pq'),
        redis.call('ZCARD', K_ACT), redis.call('ZCARD', B .. 'adm'), available, held }
      figures_at = now_s
    end
    local rank = -1
    if t.st == 'WAITING' and t.seq ~= '' then
      rank = redis.call('ZRANK', B .. 'line', user) or -1
    end
    out[#out + 1] = { 'ok', ticket_reply(t), rank, figures[1], figures[2], figures[3], figures[4],
      figures[5], figures[6] }
  end
end
commit()
return out
