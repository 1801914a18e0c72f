-- Creates holds: a batch of requests applied in order, each all-or-nothing, written with
-- one commit. The caller claims each id in the global index (HSETNX, in the same pipeline,
-- before this script).
-- ARGV[3] = number of requests; each request is 14 fields (see src/reservations.rs):
-- id, user, now, expires_at, per-user limit ('' = none), admission required ('1'/'0'),
-- actor (JSON), correlation id, immutable document (JSON), units, grade counts, seats, the
-- packed audit record of the hold's creation (its id is numbered here), and the creation
-- time's sort key in the user's index (src/user_index.rs).
-- Requests are refused (SalesPaused, SalesClosed, SessionCancelled) while the sale switch
-- (lib/stock.lua) is not OPEN, before anything is checked or taken.
-- Reply per request: {'ok', admission ticket id or ''} | {'err', refusal JSON} | {'dup'}.
local n = tonumber(ARGV[3])
local ids, users = {}, {}
for i = 0, n - 1 do
  ids[#ids + 1] = ARGV[4 + i * 14]
  users[#users + 1] = ARGV[5 + i * 14]
end
prefetch_holds(ids)
prefetch_user_holds(users)
if ARGV[9] == '1' then
  prefetch_tickets(users)
end
-- The organiser's switch, read in this step (SaleControl: no hold once it is not OPEN).
local closed = sale_refusal()
local out = {}
for i = 0, n - 1 do
  local o = 3 + i * 14
  local id, user, now_s, exp_s = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local limit, admission, actor, corr = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
  local doc, units, gq, seat_ids = ARGV[o + 9], ARGV[o + 10], ARGV[o + 11], ARGV[o + 12]
  local now = tonumber(now_s)
  local refusal, ticket = nil, nil
  if holds[id] then
    refusal = 'dup'
  elseif closed then
    refusal = closed
  elseif admission == '1' then
    ticket = load_ticket(user)
    if not ticket or ticket.st ~= 'ACTIVE' then
      refusal = '{"code":"NOT_ADMITTED"}'
    elseif now >= tonumber(ticket.exp) then
      refusal = '{"code":"ADMISSION_EXPIRED","expired_at":' .. ticket.exp .. '}'
    end
  end
  refusal = refusal or limit_refusal(user, limit, tonumber(units), now)
  refusal = refusal or take(gq, seat_ids, 'h')
  if refusal == 'dup' then
    out[#out + 1] = { 'dup' }
  elseif refusal then
    out[#out + 1] = { 'err', refusal }
  else
    local adm = ''
    if ticket then
      adm = ticket.id
      ticket.st = 'USED'
      save_ticket(user, ticket)
      zrem(K_ACT, user)
      audit(now_s, actor, 't', ticket.id, user, 'ACTIVE', 'USED', 'hold made', corr)
    end
    save_hold(id, { user, 'HELD', now_s, exp_s, now_s, units, gq, seat_ids, '', adm, '', '', '', doc })
    add_user_hold(user, id)
    zadd(user_key(user), 0, 'h:' .. ARGV[o + 14] .. ':' .. id .. ':' .. SESSION)
    index_expiry(exp_s, id)
    audit_packed(ARGV[o + 13], now_s, 'h', id, user, nil, 'HELD')
    out[#out + 1] = { 'ok', adm }
  end
end
commit()
return out
