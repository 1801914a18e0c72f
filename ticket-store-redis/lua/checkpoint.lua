-- Moves a dispatcher's checkpoint forward only (DeliveryLog::advance_checkpoint). KEYS[1] the
-- session's `ckpt` hash, ARGV[1] the consumer, ARGV[2] the sequence number.
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
