-- Records the pre-queue draw computed in Rust (ticket_core::model::queue::draw_order), once.
-- ARGV[3] pre-queue version the draw was computed from, ARGV[4] the draw (JSON),
-- ARGV[5..] the drawn order. Reply: {'done', recorded draw JSON} | {'retry'} when the
-- pre-queue changed since it was read (the caller reads and shuffles again).
local recorded = redis.call('GET', B .. 'draw')
if recorded then
  return { 'done', recorded }
end
if (redis.call('GET', B .. 'pqv') or '0') ~= ARGV[3] then
  return { 'retry' }
end
for i = 5, #ARGV do
  local user = ARGV[i]
  local seq = redis.call('INCR', B .. 'seq') - 1
  redis.call('ZADD', B .. 'line', seq, user)
  redis.call('HSET', B .. 't:' .. user, 'seq', seq)
end
redis.call('DEL', B .. 'pq')
redis.call('SET', B .. 'draw', ARGV[4])
return { 'done', ARGV[4] }
