-- Expires up to ARGV[5] live holds whose TTL passed by ARGV[3]. Each hold is expired by a
-- state change checked in this script, so racing sweepers return its units exactly once.
-- Seconds wholly past are drained from the expiry index; the current second is only read
-- (holds later in that second are not due yet). ARGV[4] actor. Reply: { {id, hold}, ... }.
local now_s, actor, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = tonumber(now_s)
local now_sec = expiry_second(now_s)
local expired = {}

local function expire_listed(ids)
  prefetch_holds(ids)
  for _, id in ipairs(ids) do
    local h = holds[id]
    if h and is_live(h[H_STATE]) and tonumber(h[H_EXP]) <= now and #expired < limit then
      apply(id, h, 'EXPIRED', 'V', now_s, actor, 'TTL elapsed', nil, nil)
      expired[#expired + 1] = id
    end
  end
end

for _, sec in ipairs(redis.call('ZRANGEBYSCORE', K_EXPB, '-inf', now_sec)) do
  if #expired >= limit then
    break
  end
  local key = B .. 'exp:' .. sec
  if sec ~= now_sec then
    -- Wholly past: pop as many as may still be expired; a popped hold is either expired
    -- now or no longer live.
    while #expired < limit do
      local ids = redis.call('LPOP', key, limit - #expired)
      if not ids then
        redis.call('ZREM', K_EXPB, sec)
        break
      end
      expire_listed(ids)
    end
  else
    expire_listed(redis.call('LRANGE', key, 0, -1))
  end
end
commit()
local out = {}
for _, id in ipairs(expired) do
  out[#out + 1] = { id, hold_reply(id) }
end
return out
