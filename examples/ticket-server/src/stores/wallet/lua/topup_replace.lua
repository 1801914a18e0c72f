-- Compare-and-set of a top-up, with its ledger credit in the same atomic step
-- (ledger_post.lua is put in front of this). A refused credit changes nothing.
-- KEYS[1] top-ups hash, KEYS[2] account hash, KEYS[3] ledger list (one user: one hash slot)
-- ARGV[1] top-up id, ARGV[2] expected version, ARGV[3] new JSON, ARGV[4] new version,
-- ARGV[5] '1' to credit, then ARGV[6..11]: ledger_post's field, currency, delta, entry, cap, user
local v = redis.call('HGET', KEYS[1], 'v:' .. ARGV[1])
if not v then return {'missing', ''} end
if v ~= ARGV[2] then return {'changed', redis.call('HGET', KEYS[1], 't:' .. ARGV[1]) or ''} end
local credit = {'none', ''}
if ARGV[5] == '1' then
  credit = ledger_post(KEYS[2], KEYS[3], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
  if credit[1] ~= 'ok' and credit[1] ~= 'dup' then return credit end
end
redis.call('HSET', KEYS[1], 't:' .. ARGV[1], ARGV[3], 'v:' .. ARGV[1], ARGV[4])
return {'done', credit[1], credit[2]}
