-- Joins the queue: a batch of requests applied in order, written with one commit.
-- ARGV[3] = number of requests; each is 6 fields: user, now, pre-queue ('1'/'0'),
-- max waiting ('' = no cap), new ticket id, actor (JSON).
-- Reply per request: {'ok', ticket} | {'err', refusal JSON} | {'draw'} (a FIFO join before
-- the pre-queue draw: the caller draws, then joins again).
local n = tonumber(ARGV[3])
local drawn = redis.call('EXISTS', B .. 'draw') == 1
-- Waiting users and the next sequence number, read once and kept up to date by this
-- batch's own joins (settling only moves ACTIVE tickets, which are not waiting).
local waiting = redis.call('ZCARD', B .. 'line') + redis.call('LLEN', B .. 'pq')
local seq = tonumber(redis.call('GET', B .. 'seq') or '0')
local first_seq = seq
local users = {}
for i = 0, n - 1 do
  users[#users + 1] = ARGV[4 + i * 6]
end
prefetch_tickets(users)
local replies = {}
for i = 0, n - 1 do
  local o = 3 + i * 6
  local user, now_s, pre, cap = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local id, actor = ARGV[o + 5], ARGV[o + 6]
  settle(now_s, actor)
  local t = load_ticket(user)
  if t and (t.st == 'WAITING' or t.st == 'ACTIVE') then
    replies[#replies + 1] = user
  elseif cap ~= '' and waiting >= tonumber(cap) then
    replies[#replies + 1] = { 'err', '{"code":"QUEUE_FULL","cap":' .. cap .. '}' }
  elseif pre ~= '1' and not drawn then
    replies[#replies + 1] = { 'draw' }
  else
    local fresh = { id = id, st = 'WAITING', pq = '0', seq = '', jat = now_s, aat = '', exp = '',
      aud = '' }
    local reason = 'joined'
    if pre == '1' and not drawn then
      redis.call('RPUSH', B .. 'pq', user)
      redis.call('INCR', B .. 'pqv')
      fresh.pq, reason = '1', 'joined pre-queue'
    else
      fresh.seq = tostring(seq)
      zadd(B .. 'line', fresh.seq, user)
      seq = seq + 1
    end
    waiting = waiting + 1
    save_ticket(user, fresh)
    audit(now_s, actor, 't', id, user, nil, 'WAITING', reason, nil)
    replies[#replies + 1] = user
  end
end
if seq ~= first_seq then
  redis.call('SET', B .. 'seq', tostring(seq))
end
commit()
local out = {}
for i, r in ipairs(replies) do
  if type(r) == 'string' then
    out[i] = { 'ok', ticket_reply(tickets[r]) }
  else
    out[i] = r
  end
end
return out
