-- Joins the queue: a batch of requests applied in order.
-- ARGV[3] = number of requests; each is 6 fields: user, now, pre-queue ('1'/'0'),
-- max waiting ('' = no cap), new ticket id, actor (JSON).
-- Reply per request: {'ok', ticket} | {'err', refusal JSON} | {'draw'} (a FIFO join before
-- the pre-queue draw: the caller draws, then joins again).
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local o = 3 + i * 6
  local user, now_s, pre, cap = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local ticket, actor = ARGV[o + 5], ARGV[o + 6]
  settle(now_s, actor)
  local tk = B .. 't:' .. user
  local st = redis.call('HGET', tk, 'st')
  if st == 'WAITING' or st == 'ACTIVE' then
    out[#out + 1] = { 'ok', ticket_reply(user) }
  else
    local waiting = redis.call('ZCARD', B .. 'line') + redis.call('LLEN', B .. 'pq')
    local drawn = redis.call('EXISTS', B .. 'draw') == 1
    if cap ~= '' and waiting >= tonumber(cap) then
      out[#out + 1] = { 'err', '{"code":"QUEUE_FULL","cap":' .. cap .. '}' }
    elseif pre ~= '1' and not drawn then
      out[#out + 1] = { 'draw' }
    else
      redis.call('DEL', tk)
      local reason
      if pre == '1' and not drawn then
        redis.call('RPUSH', B .. 'pq', user)
        redis.call('INCR', B .. 'pqv')
        redis.call('HSET', tk, 'id', ticket, 'st', 'WAITING', 'pq', '1', 'jat', now_s)
        reason = 'joined pre-queue'
      else
        local seq = redis.call('INCR', B .. 'seq') - 1
        redis.call('ZADD', B .. 'line', seq, user)
        redis.call('HSET', tk, 'id', ticket, 'st', 'WAITING', 'pq', '0', 'seq', seq, 'jat', now_s)
        reason = 'joined'
      end
      audit(now_s, actor, 't', ticket, user, nil, 'WAITING', reason, nil)
      out[#out + 1] = { 'ok', ticket_reply(user) }
    end
  end
end
return out
