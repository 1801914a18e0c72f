-- redis-script strategy: take one unit and append the order, or answer sold out, in one
-- atomic step (Redis runs a script alone).
-- KEYS[1] stock counter, KEYS[2] order list; ARGV[1] buyer.
-- Returns the stock left after the buy, or -1 when sold out.
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil or stock < 1 then
  return -1
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return redis.call('DECR', KEYS[1])
