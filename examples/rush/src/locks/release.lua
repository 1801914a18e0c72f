-- redis-lock strategy: release the lock only if it is still ours (compare and delete), so
-- a holder whose lease ran out never deletes the next holder's lock.
-- KEYS[1] lock; ARGV[1] the holder's unique token. Returns 1 if released, 0 if not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
