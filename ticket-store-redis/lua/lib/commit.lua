-- Changes written at commit: the expiry index; then commit() itself and the steps built on it
-- (applying a hold transition, settling the queue).

-- Expiry index: live holds listed per second of their expiry (`exp:<second>` lists), the
-- seconds in the `expb` sorted set. Entries are never removed when a hold ends early: the
-- sweeper skips holds that are no longer live.
local expiring, expiring_order -- set per call by begin()

-- The second of a millisecond timestamp, as a decimal string (floor division).
local function expiry_second(ms_s)
  if #ms_s > 3 and string.byte(ms_s, 1) ~= 45 then -- positive, at least one second
    return string.sub(ms_s, 1, -4)
  end
  return string.format('%d', math.floor(tonumber(ms_s) / 1000))
end

local function index_expiry(exp_s, id)
  local sec = expiry_second(exp_s)
  local l = expiring[sec]
  if not l then
    l = {}
    expiring[sec] = l
    expiring_order[#expiring_order + 1] = sec
  end
  l[#l + 1] = id
end

-- Writes everything this call changed.
local function commit()
  flush_records()
  flush(HOLDS)
  flush(USER_HOLDS)
  flush(TICKETS)
  flush_stock()
  flush(SEATS)
  for _, sec in ipairs(expiring_order) do
    call_chunked('RPUSH', B .. 'exp:' .. sec, expiring[sec], 1000)
    redis.call('ZADD', K_EXPB, 'NX', sec, sec)
  end
  expiring, expiring_order = {}, {}
  for key, l in pairs(zadds) do
    call_chunked('ZADD', key, l, 1000)
  end
  for key, l in pairs(zrems) do
    call_chunked('ZREM', key, l, 1000)
  end
  zadds, zrems = {}, {}
end

-- The hold as returned to Rust: its packed form (after commit).
local function hold_reply(id)
  local h = load_hold(id)
  return h and pack_hold(h)
end

-- Moves hold `id` (fields `h`) to `to` with stock effect `effect` ('0' none,
-- 'S' held->sold, 'V' held->available, 'C' sold->available).
local function apply(id, h, to, effect, at, actor, reason, corr, pref)
  -- The index of PAYING holds the checkout polls (paying_read.lua): no scan of live holds.
  if to == 'PAYING' and h[H_STATE] ~= 'PAYING' then
    zadd(K_PAYING, h[H_EXP], id)
  elseif h[H_STATE] == 'PAYING' and to ~= 'PAYING' then
    zrem(K_PAYING, id)
  end
  if effect == 'S' then
    move(h[H_GQ], h[H_SEATS], 'h', 's')
  elseif effect == 'V' then
    move(h[H_GQ], h[H_SEATS], 'h', 'a')
  elseif effect == 'C' then
    move(h[H_GQ], h[H_SEATS], 's', 'a')
  end
  local from = h[H_STATE]
  audit(at, actor, 'h', id, h[H_USER], from, to, reason, corr)
  h[H_STATE] = to
  h[H_UPD] = at
  if pref ~= nil and pref ~= '' then
    h[H_PREF] = pref
  end
  save_hold(id, h)
end

-- Forgets admissions older than a minute and expires ACTIVE tickets past their admission
-- TTL. `now_s` is the instant as its decimal string (timestamps never go through Lua
-- numbers on their way into Redis, so they are stored exactly).
local settled_at -- set per call by begin()
local function settle(now_s, actor)
  if settled_at == now_s then
    return
  end
  settled_at = now_s
  redis.call('ZREMRANGEBYSCORE', B .. 'adm', '-inf', string.format('%d', tonumber(now_s) - 60000))
  local due = redis.call('ZRANGEBYSCORE', K_ACT, '-inf', now_s)
  prefetch_tickets(due)
  for _, u in ipairs(due) do
    local t = load_ticket(u)
    if t and t.st == 'ACTIVE' then
      t.st = 'EXPIRED'
      save_ticket(u, t)
      audit(now_s, actor, 't', t.id, u, 'ACTIVE', 'EXPIRED', 'admission TTL elapsed', nil)
    end
  end
  if #due > 0 then
    redis.call('ZREMRANGEBYSCORE', K_ACT, '-inf', now_s)
  end
end

-- Starts a call of a session function: KEYS[1] the session's key base, ARGV[1] the feed's
-- retention, ARGV[2] the key prefix. Resets every per-call cache and pending write of the
-- library (a function library keeps its locals from one call to the next, and a call that
-- failed half-way may have left some behind).
local function begin(keys, argv)
  local session_changed = begin_base(keys, argv)
  begin_zsets()
  begin_holds()
  begin_stock()
  begin_tickets(session_changed)
  begin_feed(session_changed)
  expiring, expiring_order = emptied(expiring), emptied(expiring_order)
  settled_at = nil
end
