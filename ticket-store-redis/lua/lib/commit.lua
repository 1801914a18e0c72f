-- Changes written at commit: sorted sets, the expiry index, audit records; then commit()
-- itself and the steps built on it (applying a hold transition, settling the queue).

-- Sorted-set changes, written at commit --------------------------------------------------
local zadds, zrems = {}, {}

local function zadd(key, score, member)
  local l = zadds[key]
  if not l then
    l = {}
    zadds[key] = l
  end
  l[#l + 1] = score
  l[#l + 1] = member
end

local function zrem(key, member)
  local l = zrems[key]
  if not l then
    l = {}
    zrems[key] = l
  end
  l[#l + 1] = member
end

-- Expiry index: live holds listed per second of their expiry (`exp:<second>` lists), the
-- seconds in the `expb` sorted set. Entries are never removed when a hold ends early: the
-- sweeper skips holds that are no longer live.
local expiring, expiring_order = {}, {}

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

-- Audit ------------------------------------------------------------------------------
-- Records are kept until commit, then written as stream entries of up to 500 records each,
-- one field 'r' per record holding its packed form (id, at, kind, subject, owner, actor,
-- from, to, reason, correlation id joined by SEP); the subject's `aud` gets the entry id.
-- A record's id is AID plus a counter unless the caller built it.
local records = {}
local audited = 0

local function audit(at, actor, kind, subject, owner, from, to, reason, corr)
  audited = audited + 1
  records[#records + 1] = { table.concat({ AID .. string.format('%06x', audited), at, kind, subject,
    owner, actor, from or '', to, reason, corr or '' }, SEP), kind, subject, owner }
end

-- A record packed by the caller (same layout).
local function audit_packed(packed, kind, subject, owner)
  records[#records + 1] = { packed, kind, subject, owner }
end

-- `aud` with stream entry `eid` appended (once: a subject with several records in one entry
-- references it once; readers pick the subject's records out of the entry).
local function with_entry(aud, eid)
  if aud == nil or aud == '' then
    return eid
  end
  if string.sub(aud, -#eid) == eid then
    return aud
  end
  return aud .. ' ' .. eid
end

-- Writes everything this call changed.
local function commit()
  local i = 1
  while i <= #records do
    local last = math.min(i + 499, #records)
    local args = { K_AUDIT, 'MAXLEN', '~', AUDIT_MAX, '*' }
    for k = i, last do
      args[#args + 1] = 'r'
      args[#args + 1] = records[k][1]
    end
    local eid = redis.call('XADD', unpack(args))
    for k = i, last do
      local r = records[k]
      if r[2] == 'h' then
        local h = load_hold(r[3])
        h[H_AUD] = with_entry(h[H_AUD], eid)
        save_hold(r[3], h)
      else
        local t = load_ticket(r[4])
        t.aud = with_entry(t.aud, eid)
        save_ticket(r[4], t)
      end
    end
    i = last + 1
  end
  records = {}
  flush(HOLDS)
  flush(USER_HOLDS)
  flush(TICKETS)
  for _, f in ipairs(stock_order) do
    if stock_delta[f] ~= 0 then
      redis.call('HINCRBY', K_STOCK, f, stock_delta[f])
    end
  end
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
  stock_base, stock_delta, stock_order = {}, {}, {}
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
local settled_at = nil
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
