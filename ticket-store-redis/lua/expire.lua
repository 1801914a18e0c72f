-- Expires up to ARGV[5] live holds whose TTL passed by ARGV[3], claiming each from the
-- expiry index so that racing sweepers return every hold's units exactly once.
-- ARGV[4] actor. Reply: { {id, hold}, ... }.
local now_s, actor, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
local out = {}
local due = redis.call('ZRANGEBYSCORE', B .. 'exp', '-inf', now_s, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  local h = redis.call('HMGET', B .. 'h:' .. id, unpack(HOLD_STATE_FIELDS))
  if is_live(h[1]) then
    apply(id, h, 'EXPIRED', 'V', now_s, actor, 'TTL elapsed', nil, nil)
    out[#out + 1] = { id, hold_reply(id) }
  else
    redis.call('ZREM', B .. 'exp', id)
  end
end
return out
