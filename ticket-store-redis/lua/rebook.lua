-- Late payment: takes an ended hold's units again as a new CONFIRMED hold.
-- ARGV[3] now, ARGV[4] actor, ARGV[5] old id, ARGV[6] new id, ARGV[7] payment reference,
-- ARGV[8] per-user limit ('' = none), ARGV[9] states that may be re-booked (",A,B,"),
-- ARGV[10] audit reason.
-- Reply: {'ok', hold id, hold} | {'err', refusal JSON} | {'nf'} | {'dup'}.
local now_s, actor, old, new, pref = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local limit, allowed, reason = ARGV[8], ARGV[9], ARGV[10]
local now = tonumber(now_s)
local ok = B .. 'h:' .. old
local h = redis.call('HMGET', ok, 'state', 'rbas', 'user', 'gq', 'seats', 'units', 'doc')
if not h[1] then
  return { 'nf' }
end
if not string.find(allowed, ',' .. h[1] .. ',', 1, true) then
  return { 'err', cjson.encode({ code = 'ILLEGAL_TRANSITION', from = h[1], to = 'CONFIRMED' }) }
end
if h[2] then
  return { 'ok', h[2], hold_reply(h[2]) }
end
local nk = B .. 'h:' .. new
if redis.call('EXISTS', nk) == 1 then
  return { 'dup' }
end
local user = h[3]
local refusal = limit_refusal(user, limit, tonumber(h[6]), now) or take(h[4], h[5], 's')
if refusal then
  return { 'err', refusal }
end
redis.call('HSET', ok, 'rbas', new, 'upd', now_s)
local eid = audit(now_s, actor, 'h', new, user, nil, 'CONFIRMED', reason, pref)
redis.call('HSET', nk, 'doc', h[7], 'user', user, 'units', h[6], 'gq', h[4], 'seats', h[5],
  'state', 'CONFIRMED', 'crt', now_s, 'exp', now_s, 'upd', now_s, 'pref', pref, 'rbf', old,
  'aud', eid)
redis.call('RPUSH', B .. 'uh:' .. user, new)
return { 'ok', new, hold_reply(new) }
