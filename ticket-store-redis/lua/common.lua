-- Prepended to every session script (see src/scripts.rs).
--
-- KEYS[1] is the session's key prefix "<prefix>:{s:<session id>}:". Every key a script
-- touches is built from it, so all of them carry the session's hash tag and live in one
-- Redis Cluster slot; the client routes the call by KEYS[1].
-- ARGV[1] is the audit stream's approximate cap, ARGV[2] the first 26 hex digits of a fresh
-- UUIDv7 from which this call's audit ids are minted (plus a 6-digit counter).
local B = KEYS[1]
local AUDIT_MAX = ARGV[1]
local AID = ARGV[2]
local audited = 0

-- Appends one audit record to the session's stream; returns its entry id, which the caller
-- appends to the subject's `aud` field (the per-hold and per-user index of the trail).
local function audit(at, actor, kind, subject, owner, from, to, reason, corr)
  audited = audited + 1
  return redis.call('XADD', B .. 'audit', 'MAXLEN', '~', AUDIT_MAX, '*',
    'i', AID .. string.format('%06x', audited), 'a', at, 'k', kind, 's', subject,
    'o', owner, 'c', actor, 'f', from or '', 't', to, 'r', reason, 'x', corr or '')
end

-- `aud` (space-separated entry ids) with `eid` appended.
local function with_entry(aud, eid)
  if aud and aud ~= '' then
    return aud .. ' ' .. eid
  end
  return eid
end

-- "a:1;b:2" -> { {'a', 1}, {'b', 2} }
local function grade_counts(gq)
  local out = {}
  for g, q in string.gmatch(gq, '([^:;]+):([^;]+)') do
    out[#out + 1] = { g, tonumber(q) }
  end
  return out
end

-- "s1;s2" -> { 's1', 's2' }
local function seat_list(seats)
  local out = {}
  for s in string.gmatch(seats, '[^;]+') do
    out[#out + 1] = s
  end
  return out
end

-- Moves the units of a hold between 'a' (available), 'h' (held) and 's' (sold), and its
-- seats (if any) to the matching seat state. Only 'a' and 's' are stored counters; held is
-- capacity - available - sold, so the three always add up to the capacity.
local function move(gq, seats, from, to)
  for _, p in ipairs(grade_counts(gq)) do
    if from ~= 'h' then
      redis.call('HINCRBY', B .. 'stock', from .. ':' .. p[1], -p[2])
    end
    if to ~= 'h' then
      redis.call('HINCRBY', B .. 'stock', to .. ':' .. p[1], p[2])
    end
  end
  local state = string.upper(to)
  for _, s in ipairs(seat_list(seats)) do
    redis.call('HSET', B .. 'seats', s, state)
  end
end

-- Takes every unit or seat from 'a' into `to` ('h' or 's'), or nothing: returns the refusal
-- as JSON when something is missing. Counters are decremented and checked in one call each;
-- a grade that falls short is put back before anything else changes.
local function take(gq, seats, to)
  local busy = {}
  local seat_ids = seat_list(seats)
  for _, s in ipairs(seat_ids) do
    if redis.call('HGET', B .. 'seats', s) ~= 'A' then
      busy[#busy + 1] = s
    end
  end
  if #busy > 0 then
    return cjson.encode({ code = 'SEATS_UNAVAILABLE', seats = busy })
  end
  local grades = grade_counts(gq)
  for i, p in ipairs(grades) do
    local left = redis.call('HINCRBY', B .. 'stock', 'a:' .. p[1], -p[2])
    if left < 0 then
      for j = 1, i do
        redis.call('HINCRBY', B .. 'stock', 'a:' .. grades[j][1], grades[j][2])
      end
      return cjson.encode({ code = 'SOLD_OUT', grade = p[1], requested = p[2], available = left + p[2] })
    end
  end
  if to ~= 'h' then
    for _, p in ipairs(grades) do
      redis.call('HINCRBY', B .. 'stock', to .. ':' .. p[1], p[2])
    end
  end
  local state = string.upper(to)
  for _, s in ipairs(seat_ids) do
    redis.call('HSET', B .. 'seats', s, state)
  end
  return nil
end

-- Units the user holds (unexpired) or bought in the session.
local function counted_units(user, now)
  local total = 0
  for _, id in ipairs(redis.call('LRANGE', B .. 'uh:' .. user, 0, -1)) do
    local h = redis.call('HMGET', B .. 'h:' .. id, 'state', 'exp', 'units')
    local st = h[1]
    if st == 'CONFIRMED' or ((st == 'HELD' or st == 'PAYING') and now < tonumber(h[2])) then
      total = total + tonumber(h[3])
    end
  end
  return total
end

-- The per-user limit as a refusal (JSON), or nil when `requested` more units fit.
local function limit_refusal(user, limit, requested, now)
  if limit == '' then
    return nil
  end
  local current = counted_units(user, now)
  if current + requested > tonumber(limit) then
    return cjson.encode({ code = 'LIMIT_EXCEEDED', limit = tonumber(limit), current = current, requested = requested })
  end
  return nil
end

local HOLD_FIELDS = { 'doc', 'state', 'crt', 'exp', 'upd', 'pref', 'adm', 'rbf', 'rbas' }

-- A hold as returned to Rust (see codec.rs): its fields in HOLD_FIELDS order.
local function hold_reply(id)
  return redis.call('HMGET', B .. 'h:' .. id, unpack(HOLD_FIELDS))
end

local function is_live(state)
  return state == 'HELD' or state == 'PAYING'
end

-- Moves hold `id` (fields `h` = HOLD_STATE_FIELDS) to `to` with stock effect `effect`
-- ('0' none, 'S' held->sold, 'V' held->available, 'C' sold->available).
local function apply(id, h, to, effect, at, actor, reason, corr, pref)
  if effect == 'S' then
    move(h[5], h[6], 'h', 's')
  elseif effect == 'V' then
    move(h[5], h[6], 'h', 'a')
  elseif effect == 'C' then
    move(h[5], h[6], 's', 'a')
  end
  local eid = audit(at, actor, 'h', id, h[4], h[1], to, reason, corr)
  local hk = B .. 'h:' .. id
  local aud = with_entry(h[7], eid)
  if pref ~= nil and pref ~= '' then
    redis.call('HSET', hk, 'state', to, 'upd', at, 'aud', aud, 'pref', pref)
  else
    redis.call('HSET', hk, 'state', to, 'upd', at, 'aud', aud)
  end
  if is_live(h[1]) and not is_live(to) then
    redis.call('ZREM', B .. 'exp', id)
  end
end

local HOLD_STATE_FIELDS = { 'state', 'exp', 'rbas', 'user', 'gq', 'seats', 'aud' }

local TICKET_FIELDS = { 'id', 'st', 'pq', 'seq', 'jat', 'aat', 'exp' }

local function ticket_reply(user)
  return redis.call('HMGET', B .. 't:' .. user, unpack(TICKET_FIELDS))
end

-- Forgets admissions older than a minute and expires ACTIVE tickets past their admission TTL.
-- `now_s` is the instant as its decimal string (timestamps never go through Lua numbers on
-- their way into Redis, so they are stored exactly).
local settled_at = nil
local function settle(now_s, actor)
  if settled_at == now_s then
    return
  end
  settled_at = now_s
  redis.call('ZREMRANGEBYSCORE', B .. 'adm', '-inf', string.format('%d', tonumber(now_s) - 60000))
  local due = redis.call('ZRANGEBYSCORE', B .. 'act', '-inf', now_s)
  for _, u in ipairs(due) do
    local tk = B .. 't:' .. u
    local t = redis.call('HMGET', tk, 'st', 'id', 'aud')
    if t[1] == 'ACTIVE' then
      local eid = audit(now_s, actor, 't', t[2], u, 'ACTIVE', 'EXPIRED', 'admission TTL elapsed', nil)
      redis.call('HSET', tk, 'st', 'EXPIRED', 'aud', with_entry(t[3], eid))
    end
  end
  if #due > 0 then
    redis.call('ZREMRANGEBYSCORE', B .. 'act', '-inf', now_s)
  end
end

-- Units available and held over every grade (held = capacity - available - sold).
local function stock_totals()
  local available, capacity, sold = 0, 0, 0
  local all = redis.call('HGETALL', B .. 'stock')
  for i = 1, #all, 2 do
    local c, n = string.sub(all[i], 1, 2), tonumber(all[i + 1])
    if c == 'a:' then
      available = available + n
    elseif c == 'c:' then
      capacity = capacity + n
    elseif c == 's:' then
      sold = sold + n
    end
  end
  return available, capacity - available - sold
end
