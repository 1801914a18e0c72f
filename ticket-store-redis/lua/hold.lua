-- Creates holds: a batch of requests applied in order, each all-or-nothing. The caller
-- claims each id in the global index (SET NX, in the same pipeline, before this script).
-- ARGV[3] = number of requests; each request is 12 fields (see src/reservations.rs):
-- id, user, now, expires_at, per-user limit ('' = none), admission required ('1'/'0'),
-- actor (JSON), correlation id, immutable document (JSON), units, grade counts, seats.
-- Reply per request: {'ok', admission ticket id or ''} | {'err', refusal JSON} | {'dup'}.
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local o = 3 + i * 12
  local id, user, now_s, exp_s = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local limit, admission, actor, corr = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
  local doc, units, gq, seats = ARGV[o + 9], tonumber(ARGV[o + 10]), ARGV[o + 11], ARGV[o + 12]
  local now = tonumber(now_s)
  local tk = B .. 't:' .. user
  local hk = B .. 'h:' .. id
  local refusal, ticket = nil, nil
  if redis.call('EXISTS', hk) == 1 then
    refusal = 'dup'
  elseif admission == '1' then
    ticket = redis.call('HMGET', tk, 'st', 'exp', 'id', 'aud')
    if ticket[1] ~= 'ACTIVE' then
      refusal = '{"code":"NOT_ADMITTED"}'
    elseif now >= tonumber(ticket[2]) then
      refusal = '{"code":"ADMISSION_EXPIRED","expired_at":' .. ticket[2] .. '}'
    end
  end
  refusal = refusal or limit_refusal(user, limit, units, now)
  refusal = refusal or take(gq, seats, 'h')
  if refusal == 'dup' then
    out[#out + 1] = { 'dup' }
  elseif refusal then
    out[#out + 1] = { 'err', refusal }
  else
    local eid = audit(now_s, actor, 'h', id, user, nil, 'HELD', 'hold created', corr)
    if ticket then
      local teid = audit(now_s, actor, 't', ticket[3], user, 'ACTIVE', 'USED', 'hold made', corr)
      redis.call('HSET', tk, 'st', 'USED', 'aud', with_entry(ticket[4], teid))
      redis.call('ZREM', B .. 'act', user)
      redis.call('HSET', hk, 'doc', doc, 'user', user, 'units', units, 'gq', gq, 'seats', seats,
        'state', 'HELD', 'crt', now_s, 'exp', exp_s, 'upd', now_s, 'aud', eid, 'adm', ticket[3])
    else
      redis.call('HSET', hk, 'doc', doc, 'user', user, 'units', units, 'gq', gq, 'seats', seats,
        'state', 'HELD', 'crt', now_s, 'exp', exp_s, 'upd', now_s, 'aud', eid)
    end
    redis.call('RPUSH', B .. 'uh:' .. user, id)
    redis.call('ZADD', B .. 'exp', exp_s, id)
    out[#out + 1] = { 'ok', ticket and ticket[3] or '' }
  end
end
return out
