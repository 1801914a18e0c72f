-- Changes what a session sells (ticket_core::store::SaleControl::change_capacity): the plan
-- computed in Rust (CapacityDelta::apply_to) is stored if the plan it was computed from is
-- still the current one, with the stock moved in the same step.
-- ARGV[3] now, ARGV[4] actor (JSON), ARGV[5] the record's owner (the actor's id), ARGV[6] the
-- plan version the change was computed from (the def hash's 'pv', absent = 0), ARGV[7] the new
-- plan (JSON, the def hash's 'plan'), ARGV[8] the record's reason, ARGV[9] the change:
-- 'add_units' | 'remove_units' (ARGV[10] grade, ARGV[11] units) | 'add_seats' |
-- 'remove_seats' (ARGV[10], ARGV[11] unused; then seat id and grade pairs from ARGV[12]).
-- Units and seats that go must be on sale: capacity and available move together, so
-- available + held + sold stays the capacity.
-- Reply: {'ok', stock hash (HGETALL, after the change)} | {'err', refusal JSON} | {'stale'}
-- (the plan changed since it was read: read it again) | {'nf'}.
local now_s, actor, owner, version = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local plan, reason, op, grade, units = ARGV[7], ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local K_DEF = B .. 'def'
local def = redis.call('HMGET', K_DEF, 'json', 'pv')
if not def[1] then
  return { 'nf' }
end
local pv = tonumber(def[2] or '0')
if pv ~= tonumber(version) then
  return { 'stale' }
end
if stock_value('sw') == SALE_CODES.CANCELLED then
  return { 'err', sale_refusal() }
end
local seats, seat_grades = {}, {}
for i = 12, #ARGV, 2 do
  seats[#seats + 1] = ARGV[i]
  seat_grades[#seat_grades + 1] = ARGV[i + 1]
end
if op == 'add_units' then
  stock_add('c:' .. grade, units)
  stock_add('a:' .. grade, units)
elseif op == 'remove_units' then
  local available = stock_value('a:' .. grade)
  if available < units then
    return { 'err', cjson.encode({ code = 'CAPACITY_IN_USE', grade = grade, requested = units,
      removable = available }) }
  end
  stock_add('c:' .. grade, -units)
  stock_add('a:' .. grade, -units)
elseif op == 'add_seats' or op == 'remove_seats' then
  prefetch(SEATS, seats)
  local bad = {}
  for _, s in ipairs(seats) do
    local st = seat_state(s)
    if (op == 'add_seats' and st) or (op == 'remove_seats' and st ~= 'A') then
      bad[#bad + 1] = s
    end
  end
  if #bad > 0 then
    local code = op == 'add_seats' and 'SEATS_EXIST' or 'SEATS_UNAVAILABLE'
    return { 'err', cjson.encode({ code = code, seats = bad }) }
  end
  local d = op == 'add_seats' and 1 or -1
  for i, s in ipairs(seats) do
    stock_add('c:' .. seat_grades[i], d)
    stock_add('a:' .. seat_grades[i], d)
    if d == 1 then
      set_seat(s, 'A')
    end
  end
  if d == -1 then
    call_chunked('HDEL', K_SEATS, seats, 1000)
  end
else
  return redis.error_reply('capacity: unknown change ' .. op)
end
redis.call('HSET', K_DEF, 'plan', plan, 'pv', string.format('%d', pv + 1))
audit(now_s, actor, 's', SESSION, owner, nil, 'CAPACITY_CHANGED', reason, nil)
commit()
return { 'ok', redis.call('HGETALL', K_STOCK) }
