-- Moves one hold to another state, following the decision table computed in Rust from
-- ticket_core::model::hold::decide_parts (src/reservations.rs):
-- ARGV[3] now, ARGV[4] actor, ARGV[5] hold id, ARGV[6] target state, ARGV[7] table
-- (",STATE:xxxx" per state; the 4 codes are for (due, rebooked) = 00, 01, 10, 11),
-- ARGV[8] reason, ARGV[9] correlation id, ARGV[10] payment reference.
-- Codes: 'A' already there, 'X' expire instead, 'D' not due, 'I' illegal, '0' apply without
-- stock effect, 'S' held->sold, 'V' held->available, 'C' sold->available.
-- Reply: {'ok', changed (0/1), hold} | {'err', refusal JSON} | {'nf'}.
local now_s, actor, id, to = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tbl, reason, corr, pref = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
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
apply(id, h, to, code, now_s, actor, reason, corr, pref)
commit()
return { 'ok', 1, hold_reply(id) }
