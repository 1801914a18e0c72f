-- Joins the queue: a batch of requests applied in order.
-- ARGV[3] = number of requests; each is 6 fields: user, now, pre-queue ('1'/'0'),
-- max waiting ('' = no cap), new ticket id, actor (JSON).
-- Reply per request: {'ok', ticket} | {'err', refusal JSON} | {'draw'} (a FIFO join before
-- the pre-queue draw: the caller draws, then joins again).
local n = tonumber(ARGV[3])
local out = {}
local drawn = redis.call('EXISTS', B .. 'draw') == 1
-- Waiting users, read once and kept up to date by this batch's own joins (settling only
-- moves ACTIVE tickets, which are not waiting).
local waiting = redis.call('ZCARD', B .. 'line') + redis.call('LLEN', B .. 'pq')
for i = 0, n - 1 do
  local o = 3 + i * 6
  local user, now_s, pre, cap = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local ticket, actor = ARGV[o + 5], ARGV[o + 6]
  settle(now_s, actor)
  local tk = B .. 't:' .. user
  local old = redis.call('HMGET', tk, 'st', 'aud')
  if old[1] == 'WAITING' or old[1] == 'ACTIVE' then
    out[#out + 1] = { 'ok', ticket_reply(user) }
  elseif cap ~= '' and waiting >= tonumber(cap) then
    out[#out + 1] = { 'err', '{"code":"QUEUE_FULL","cap":' .. cap .. '}' }
  elseif pre ~= '1' and not drawn then
    out[#out + 1] = { 'draw' }
  else
    if old[1] then
      -- A new ticket after an ended one: clear what the old one set.
      redis.call('HDEL', tk, 'seq', 'aat', 'exp')
    end
    local pq, seq, reason = '0', '', 'joined'
    if pre == '1' and not drawn then
      redis.call('RPUSH', B .. 'pq', user)
      redis.call('INCR', B .. 'pqv')
      pq, reason = '1', 'joined pre-queue'
    else
      seq = redis.call('INCR', B .. 'seq') - 1
      redis.call('ZADD', B .. 'line', seq, user)
    end
    waiting = waiting + 1
    local eid = audit(now_s, actor, 't', ticket, user, nil, 'WAITING', reason, nil)
    if seq == '' then
      redis.call('HSET', tk, 'id', ticket, 'st', 'WAITING', 'pq', pq, 'jat', now_s,
        'aud', with_entry(old[2], eid))
    else
      redis.call('HSET', tk, 'id', ticket, 'st', 'WAITING', 'pq', pq, 'seq', seq, 'jat', now_s,
        'aud', with_entry(old[2], eid))
    end
    -- The ticket as TICKET_FIELDS lists it, without reading it back.
    out[#out + 1] = { 'ok', { ticket, 'WAITING', pq, seq, now_s, '', '' } }
  end
end
return out
