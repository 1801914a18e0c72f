-- Moves the organiser's sale switch (lib/stock.lua: 'sw', 'swat' of the stock hash, the
-- reason in the def hash's 'swr'), with its audit record and change, following the decision
-- table computed in Rust from ticket_core::model::sale::decide_sale_transition
-- (src/sale_control.rs).
-- ARGV[3] now, ARGV[4] actor (JSON), ARGV[5] the record's owner (the actor's id), ARGV[6] the
-- target state, ARGV[7] table (",STATE:c" per current state; c is 'A' already there, 'M'
-- move, 'I' illegal), ARGV[8] reason.
-- Reply: {'ok', changed (0/1), state index, since ('' = never moved), reason (nil = never
-- moved)} | {'err', refusal JSON} | {'nf'}.
local now_s, actor, owner, to, tbl, reason = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local K_DEF = B .. 'def'
if redis.call('HEXISTS', K_DEF, 'json') == 0 then
  return { 'nf' }
end
local function reply(changed, why)
  local since = stock_value('swat')
  return { 'ok', changed, stock_value('sw'), since ~= 0 and string.format('%d', since) or '', why }
end
local from = SALE_STATES[stock_value('sw')]
local to_code = SALE_CODES[to]
if not from or not to_code then
  return redis.error_reply('sale switch: unknown state ' .. tostring(from) .. ' or ' .. to)
end
local code = string.match(tbl, ',' .. from .. ':(.)')
if code == 'A' then
  return reply(0, redis.call('HGET', K_DEF, 'swr'))
elseif code ~= 'M' then
  return { 'err', cjson.encode({ code = 'ILLEGAL_SALE_TRANSITION', from = from, to = to }) }
end
-- The record's instant, raised to the session's latest (as record() does): the switch's since.
local at = math.max(tonumber(now_s), stock_value('lat'))
local at_s = string.format('%d', at)
audit(at_s, actor, 's', SESSION, owner, from, to, reason, nil)
stock_set('sw', to_code)
stock_set('swat', at)
redis.call('HSET', K_DEF, 'swr', reason)
commit()
return reply(1, reason)
