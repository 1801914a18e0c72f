-- One GCRA step (the rule of `gcra_step` in src/throttle/policy.rs), atomic in Redis.
-- KEYS[1]  the key's TAT (epoch ms, a string); absent = a full bucket
-- ARGV[1]  now (epoch ms)
-- ARGV[2]  interval (ms between requests once the burst is spent)
-- ARGV[3]  tolerance (how far ahead of now the TAT may run, ms)
-- Returns 0 when allowed (the new TAT stored, expiring when the bucket is full again), or
-- the milliseconds to wait (>= 1) when refused (nothing changed).
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
    tat = now
end
local allow_at = tat - tolerance
if now < allow_at then
    return allow_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', new_tat - now))
return 0
