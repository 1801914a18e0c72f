-- Undoes create_session for event ARGV[3] (a conflicting create_event rolls back).
local def = redis.call('HGET', B .. 'def', 'event')
if def == ARGV[3] then
  redis.call('DEL', B .. 'def', B .. 'stock', B .. 'seats')
  return 1
end
return 0
