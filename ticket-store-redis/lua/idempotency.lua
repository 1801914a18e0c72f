-- Idempotency records, one hash per key: fp (fingerprint), until (the record lapses at this
-- instant of the injected clock), at (claim instant), out (stored outcome, once complete).
-- KEYS[1] the record; ARGV[1] operation: 'claim' | 'complete' | 'release'; ARGV[2] fingerprint.
-- claim: ARGV[3] now, ARGV[4] in-flight until -> {'started'} | {'done', outcome} |
--        {'inflight'} | {'reused'}
-- complete: ARGV[3] outcome, ARGV[4] kept until -> 1 stored | 0 not in flight under fp
-- release: -> 1 released | 0 nothing to release
-- The key also gets a Redis TTL matching its lapse, so forgotten records free their memory.
local k, op, fp = KEYS[1], ARGV[1], ARGV[2]
local r = redis.call('HMGET', k, 'fp', 'until', 'out', 'at')
if op == 'claim' then
  local now, untl = tonumber(ARGV[3]), tonumber(ARGV[4])
  if r[1] and tonumber(r[2]) > now then
    if r[1] ~= fp then
      return { 'reused' }
    elseif r[3] then
      return { 'done', r[3] }
    end
    return { 'inflight' }
  end
  redis.call('DEL', k)
  redis.call('HSET', k, 'fp', fp, 'until', ARGV[4], 'at', ARGV[3])
  redis.call('PEXPIRE', k, string.format('%d', math.max(untl - now, 1)))
  return { 'started' }
end
if r[1] ~= fp or r[3] then
  return 0
end
if op == 'complete' then
  redis.call('HSET', k, 'out', ARGV[3], 'until', ARGV[4])
  redis.call('PEXPIRE', k, string.format('%d', math.max(tonumber(ARGV[4]) - tonumber(r[4]), 1)))
  return 1
end
redis.call('DEL', k)
return 1
