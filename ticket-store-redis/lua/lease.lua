-- Takes or renews a lease (Leases::try_lease). KEYS[1] the lease, ARGV[1] the holder,
-- ARGV[2] now, ARGV[3] the lease's end (ms). The value is holder SEP until; time is the
-- caller's clock (as for every time-dependent operation), not Redis's.
-- Reply: 1 granted, 0 held by another until after now.
local v = redis.call('GET', KEYS[1])
if v then
  local holder, until_ms = string.match(v, '^([^\31]*)\31(.*)$')
  if holder ~= ARGV[1] and tonumber(until_ms) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '\31' .. ARGV[3])
return 1
