-- Records how a delivery ended, once (DeliveryLog::finish_delivery). KEYS[1] the session's
-- `dlv` hash, ARGV[1] the field `<seq>:<recipient>`, ARGV[2] the record (JSON).
-- Reply: 1 when this call wrote it, 0 when it was already finished.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, 1) == 'D' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], 'D\31' .. ARGV[2])
return 1
