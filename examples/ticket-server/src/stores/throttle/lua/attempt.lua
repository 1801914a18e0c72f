-- One login attempt under a failure backoff (the rule of `attempt_step` in
-- src/throttle/policy.rs), atomic in Redis.
-- KEYS[1]  a hash {count, locked_until, last} (epoch ms); absent = no failures
-- ARGV[1]  now (epoch ms)
-- ARGV[2]  threshold: the attempt that makes this many counted attempts locks the key
-- ARGV[3]  first lock (ms); it doubles with every further attempt
-- ARGV[4]  longest lock (ms)
-- ARGV[5]  forget the key this long after the later of its last attempt and its lock's end
-- Returns 0 when allowed (the attempt counted), or the milliseconds to wait (>= 1) while
-- the key is locked (nothing counted). The key expires when it may be forgotten.
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local forget = tonumber(ARGV[5])
local stored = redis.call('HMGET', KEYS[1], 'count', 'locked_until', 'last')
local count = tonumber(stored[1]) or 0
local locked_until = tonumber(stored[2]) or 0
local last = tonumber(stored[3]) or 0
if math.max(locked_until, last) + forget <= now then
    count, locked_until = 0, 0
end
if now < locked_until then
    return locked_until - now
end
count = count + 1
locked_until = 0
if count >= threshold then
    local doublings = math.min(count - threshold, 40)
    locked_until = now + math.min(first * 2 ^ doublings, max)
end
redis.call('HSET', KEYS[1], 'count', count, 'locked_until', string.format('%d', locked_until),
    'last', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(locked_until, now) + forget - now))
return 0
