-- Late payment: takes an ended hold's units again as a new CONFIRMED hold.
-- ARGV[3] now, ARGV[4] actor, ARGV[5] old id, ARGV[6] new id, ARGV[7] payment reference,
-- ARGV[8] per-user limit ('' = none), ARGV[9] states that may be re-booked (",A,B,"),
-- ARGV[10] audit reason, ARGV[11] the sort key of `now` in the user's index
-- (src/user_index.rs).
-- Reply: {'ok', hold id, hold} | {'err', refusal JSON} | {'nf'} | {'dup'}.
local now_s, actor, old, new, pref = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local limit, allowed, reason = ARGV[8], ARGV[9], ARGV[10]
local now = tonumber(now_s)
local h = load_hold(old)
if not h then
  return { 'nf' }
end
if not string.find(allowed, ',' .. h[H_STATE] .. ',', 1, true) then
  return { 'err', cjson.encode({ code = 'ILLEGAL_TRANSITION', from = h[H_STATE], to = 'CONFIRMED' }) }
end
if h[H_RBAS] ~= '' then
  return { 'ok', h[H_RBAS], hold_reply(h[H_RBAS]) }
end
if load_hold(new) then
  return { 'dup' }
end
local user = h[H_USER]
-- The organiser's switch first (SalesPaused, SalesClosed, SessionCancelled), then the limit
-- and the stock, all in this step.
local refusal = sale_refusal() or limit_refusal(user, limit, tonumber(h[H_UNITS]), now)
  or take(h[H_GQ], h[H_SEATS], 's')
if refusal then
  return { 'err', refusal }
end
h[H_RBAS] = new
h[H_UPD] = now_s
save_hold(old, h)
save_hold(new, { user, 'CONFIRMED', now_s, now_s, now_s, h[H_UNITS], h[H_GQ], h[H_SEATS], pref, '', old, '', '', h[H_DOC] })
add_user_hold(user, new)
zadd(user_key(user), 0, 'h:' .. ARGV[11] .. ':' .. new .. ':' .. SESSION)
audit(now_s, actor, 'h', new, user, nil, 'CONFIRMED', reason, pref)
commit()
return { 'ok', new, hold_reply(new) }
