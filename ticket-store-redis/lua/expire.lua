-- Expires up to ARGV[5] live holds whose TTL passed by ARGV[3], claiming each from the
-- expiry index so that racing sweepers return every hold's units exactly once.
-- ARGV[4] actor. Reply: { {id, hold}, ... }.
local now_s, actor, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', B .. 'exp', '-inf', now_s, 'LIMIT', 0, limit)
prefetch_holds(due)
local expired = {}
for _, id in ipairs(due) do
  local h = holds[id]
  if h and is_live(h[H_STATE]) then
    apply(id, h, 'EXPIRED', 'V', now_s, actor, 'TTL elapsed', nil, nil)
    expired[#expired + 1] = id
  else
    zrem(B .. 'exp', id)
  end
end
commit()
local out = {}
for _, id in ipairs(expired) do
  out[#out + 1] = { id, hold_reply(id) }
end
return out
