-- The ledger's one change, put in front of every script that appends an entry: the
-- idempotency lookup, the currency, funds and limit checks, the ledger LPUSH and the balance
-- HINCRBY, in the script's one atomic step. Answers {status, value}.
-- Only server-made keys (`sys:…`, see ledger_key.rs) may name an entry: another is refused.
local function ledger_post(acct, ledger, field, currency, delta, json, cap, user)
  if string.sub(field, 1, 6) ~= 'k:sys:' then return {'badkey', field} end
  local prev = redis.call('HGET', acct, field)
  if prev then return {'dup', prev} end
  local cur = redis.call('HGET', acct, 'currency')
  if cur and cur ~= currency then return {'currency', cur} end
  local raw = redis.call('HGET', acct, 'balance') or '0'
  local bal = tonumber(raw)
  local d = tonumber(delta)
  if d < 0 and bal + d < 0 then return {'short', raw} end
  if d > 0 and bal + d > tonumber(cap) then return {'limit', raw} end
  redis.call('HSET', acct, 'user', user, 'currency', currency, field, json)
  redis.call('HINCRBY', acct, 'balance', delta)
  redis.call('LPUSH', ledger, json)
  return {'ok', json}
end
