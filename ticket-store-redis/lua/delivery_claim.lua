-- Claims a delivery (DeliveryLog::claim_delivery). KEYS[1] the session's `dlv` hash, ARGV[1]
-- the field `<seq>:<recipient>`, ARGV[2] the holder, ARGV[3] now, ARGV[4] the lease's end (ms).
-- A field is 'C' SEP holder SEP until (a live or lapsed claim) or 'D' SEP record JSON (done).
-- Reply: {'claimed'} | {'busy'} | {'done', record JSON}.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  if string.sub(v, 1, 1) == 'D' then
    return { 'done', string.sub(v, 3) }
  end
  local holder, until_ms = string.match(v, '^C\31([^\31]*)\31(.*)$')
  if holder ~= ARGV[2] and tonumber(until_ms) > tonumber(ARGV[3]) then
    return { 'busy' }
  end
end
redis.call('HSET', KEYS[1], ARGV[1], 'C\31' .. ARGV[2] .. '\31' .. ARGV[4])
return { 'claimed' }
