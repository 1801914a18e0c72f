-- Records the pre-queue draw computed in Rust (ticket_core::model::queue::draw_order), once.
-- ARGV[3] pre-queue version the draw was computed from, ARGV[4] the draw (JSON), ARGV[5] its
-- instant (the feed announces it then: QueueDrawn), ARGV[6..] the drawn order.
-- Reply: {'done', recorded draw JSON} | {'retry'} when the pre-queue changed since it was
-- read (the caller reads and shuffles again).
local recorded = redis.call('GET', B .. 'draw')
if recorded then
  return { 'done', recorded }
end
if (redis.call('GET', B .. 'pqv') or '0') ~= ARGV[3] then
  return { 'retry' }
end
local users = {}
for i = 6, #ARGV do
  users[#users + 1] = ARGV[i]
end
prefetch_tickets(users)
for _, user in ipairs(users) do
  local seq = tostring(redis.call('INCR', B .. 'seq') - 1)
  zadd(B .. 'line', seq, user)
  local t = load_ticket(user)
  if t then
    t.seq = seq
    save_ticket(user, t)
  end
end
emit('queue_drawn', ARGV[5], '', '', '', '')
commit()
redis.call('DEL', B .. 'pq')
redis.call('SET', B .. 'draw', ARGV[4])
return { 'done', ARGV[4] }
