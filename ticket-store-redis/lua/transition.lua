-- Moves one hold to another state, following the decision table computed in Rust from
-- ticket_core::backend::encoding::decision_codes (src/reservations.rs):
-- ARGV[3] now, ARGV[4] actor, ARGV[5] hold id, ARGV[6] target state, ARGV[7] table
-- (",STATE:xxxx" per state; the 4 codes are for (due, rebooked) = 00, 01, 10, 11),
-- ARGV[8] reason, ARGV[9] correlation id, ARGV[10] payment reference, ARGV[11] the states
-- from which this move is refused once a ticket of the hold was checked in (",CONFIRMED,"
-- toward CANCELLED, from ticket_core::model::check_in::blocked_by_check_in; "" otherwise).
-- Codes: 'A' already there, 'X' expire instead, 'D' not due, 'I' illegal, '0' apply without
-- stock effect, 'S' held->sold, 'V' held->available, 'C' sold->available.
-- Reply: {'ok', changed (0/1), hold} | {'err', refusal JSON} | {'nf'}.
local now_s, actor, id, to = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tbl, reason, corr, pref, guarded = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local now = tonumber(now_s)
local h = load_hold(id)
if not h then
  return { 'nf' }
end
local state, expires = h[H_STATE], h[H_EXP]
local codes = string.match(tbl, ',' .. state .. ':(....)')
if not codes then
  return redis.error_reply('hold ' .. id .. ' is in unknown state ' .. state)
end
local due = now >= tonumber(expires) and 2 or 0
local rebooked = (h[H_RBAS] ~= '') and 1 or 0
local code = string.sub(codes, due + rebooked + 1, due + rebooked + 1)
if code == 'A' then
  return { 'ok', 0, hold_reply(id) }
elseif code == 'D' then
  return { 'err', '{"code":"NOT_DUE","expires_at":' .. expires .. '}' }
elseif code == 'I' then
  return { 'err', cjson.encode({ code = 'ILLEGAL_TRANSITION', from = state, to = to }) }
elseif code == 'X' then
  apply(id, h, 'EXPIRED', 'V', now_s, actor, 'used after its TTL', corr, nil)
  commit()
  return { 'err', '{"code":"HOLD_EXPIRED","expired_at":' .. expires .. '}' }
end
-- A holder who went in is neither refunded nor resold: checked in the same script as the
-- move, so a check-in (lua/check_in.lua) and this move of one hold exclude each other.
if string.find(guarded, ',' .. state .. ',', 1, true) then
  local first = nil
  for _, mark in ipairs(redis.call('HVALS', B .. 'used:' .. id)) do
    local at = string.sub(mark, 1, string.find(mark, SEP, 1, true) - 1)
    if first == nil or tonumber(at) < tonumber(first) then
      first = at
    end
  end
  if first then
    return { 'err', '{"code":"TICKET_USED","first_used_at":' .. first .. '}' }
  end
end
apply(id, h, to, code, now_s, actor, reason, corr, pref)
commit()
return { 'ok', 1, hold_reply(id) }
