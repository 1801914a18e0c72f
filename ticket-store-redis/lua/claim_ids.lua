-- Claims hold ids in the global index (KEYS[1], a hash id -> session): ARGV[1] the session,
-- ARGV[2..] the ids. Reply: one 1 (claimed now) or 0 (already taken) per id.
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1])
end
return out
