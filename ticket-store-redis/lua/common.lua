-- Prepended to every session script (see src/scripts.rs).
--
-- KEYS[1] is the session's key prefix "<prefix>:{s:<session id>}:". Every key a script
-- touches is built from it, so all of them carry the session's hash tag and live in one
-- Redis Cluster slot; the client routes the call by KEYS[1].
-- ARGV[1] is the audit stream's approximate cap, ARGV[2] the first 26 hex digits of a fresh
-- UUIDv7 from which this call's audit ids are minted (plus a 6-digit counter).
--
-- Scripts work on a unit of work: reads go through caches, changes are kept in them, and
-- commit() writes everything at the end with one command per key (one HSET for all holds
-- touched, one XADD for all audit records, one ZADD per sorted set, ...). A batch of
-- requests thus costs a handful of Redis calls, not a handful per request, and later
-- requests of a batch see the effects of earlier ones through the caches.
local B = KEYS[1]
local AUDIT_MAX = ARGV[1]
local AID = ARGV[2]
local SEP = '\31'
local K_HOLDS, K_UH, K_STOCK, K_SEATS = B .. 'holds', B .. 'uh', B .. 'stock', B .. 'seats'
local K_EXPB, K_ACT, K_AUDIT = B .. 'expb', B .. 'act', B .. 'audit'

-- Packed holds (field of the `holds` hash): these fields joined by SEP, `doc` (the
-- immutable JSON of items and amount) last. Empty string = none.
local H_USER, H_STATE, H_CRT, H_EXP, H_UPD, H_UNITS, H_GQ, H_SEATS = 1, 2, 3, 4, 5, 6, 7, 8
local H_PREF, H_ADM, H_RBF, H_RBAS, H_AUD, H_DOC = 9, 10, 11, 12, 13, 14

local function unpack_hold(s)
  local f, start = {}, 1
  for i = 1, H_DOC - 1 do
    local j = string.find(s, SEP, start, true)
    f[i] = string.sub(s, start, j - 1)
    start = j + 1
  end
  f[H_DOC] = string.sub(s, start)
  return f
end

-- HMGET of many fields, in chunks (Lua's unpack is limited to a few thousand values).
local function hmget_many(key, fields)
  local out = {}
  for i = 1, #fields, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 999, #fields)))
    for j = 1, #part do
      out[i + j - 1] = part[j]
    end
  end
  return out
end

-- Runs `cmd key <list>` in chunks of `step` values.
local function call_chunked(cmd, key, list, step)
  for i = 1, #list, step do
    redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
  end
end

-- Per-call caches over hashes ------------------------------------------------------------
-- Some fields of one hash: read (decoded) once, changed in memory, written back (encoded) by
-- commit(). A missing field is cached as false.
local function cached_hash(key, decode, encode)
  return { key = key, decode = decode, encode = encode, values = {}, dirty = {}, order = {} }
end

local function same(v)
  return v
end

-- Reads the `fields` not cached yet, with one HMGET.
local function prefetch(c, fields)
  local want = {}
  for _, f in ipairs(fields) do
    if c.values[f] == nil then
      want[#want + 1] = f
    end
  end
  if #want == 0 then
    return
  end
  local raw = hmget_many(c.key, want)
  for i, f in ipairs(want) do
    c.values[f] = raw[i] and c.decode(raw[i]) or false
  end
end

local function load(c, field)
  if c.values[field] == nil then
    prefetch(c, { field })
  end
  return c.values[field]
end

local function save(c, field, value)
  c.values[field] = value
  if not c.dirty[field] then
    c.dirty[field] = true
    c.order[#c.order + 1] = field
  end
end

-- Writes the changed fields.
local function flush(c)
  if #c.order == 0 then
    return
  end
  local args = {}
  for _, f in ipairs(c.order) do
    args[#args + 1] = f
    args[#args + 1] = c.encode(c.values[f])
  end
  call_chunked('HSET', c.key, args, 1000)
  c.dirty, c.order = {}, {}
end

-- Holds ------------------------------------------------------------------------------
local function pack_hold(h)
  return table.concat(h, SEP, 1, H_DOC)
end

local HOLDS = cached_hash(K_HOLDS, unpack_hold, pack_hold)
local holds = HOLDS.values

local function prefetch_holds(ids)
  prefetch(HOLDS, ids)
end

-- The hold's fields, or false.
local function load_hold(id)
  return load(HOLDS, id)
end

local function save_hold(id, h)
  save(HOLDS, id, h)
end

-- Hold ids of each user, in creation order ('id id id' in the `uh` hash).
local USER_HOLDS = cached_hash(K_UH, same, same)

local function prefetch_user_holds(users)
  prefetch(USER_HOLDS, users)
end

local function load_user_holds(user)
  return load(USER_HOLDS, user) or ''
end

-- The user's hold ids as a list.
local function user_hold_ids(user)
  local ids = {}
  for id in string.gmatch(load_user_holds(user), '%S+') do
    ids[#ids + 1] = id
  end
  return ids
end

local function add_user_hold(user, id)
  local ids = load_user_holds(user)
  save(USER_HOLDS, user, (ids == '') and id or (ids .. ' ' .. id))
end

-- Stock ------------------------------------------------------------------------------
-- Counters 'a:<grade>' (available), 's:<grade>' (sold), 'c:<grade>' (capacity). Held is
-- capacity - available - sold, so the three always add up to the capacity.
local stock_base, stock_delta, stock_order = {}, {}, {}

local function stock_value(f)
  if stock_base[f] == nil then
    stock_base[f] = tonumber(redis.call('HGET', K_STOCK, f) or '0')
  end
  return stock_base[f] + (stock_delta[f] or 0)
end

local function stock_add(f, d)
  if stock_delta[f] == nil then
    stock_delta[f] = 0
    stock_order[#stock_order + 1] = f
  end
  stock_delta[f] = stock_delta[f] + d
end

-- Seat states ('A', 'H', 'S'), false for an unknown seat.
local SEATS = cached_hash(K_SEATS, same, same)

local function seat_state(s)
  return load(SEATS, s)
end

local function set_seat(s, state)
  save(SEATS, s, state)
end

-- "a:1;b:2" -> { {'a', 1}, {'b', 2} } (parsed once per call and value: the results are
-- shared, never modified).
local parsed_gq = {}
local function grade_counts(gq)
  local out = parsed_gq[gq]
  if not out then
    out = {}
    for g, q in string.gmatch(gq, '([^:;]+):([^;]+)') do
      -- grade, quantity, and the counter names per stock letter
      out[#out + 1] = { g, tonumber(q), { a = 'a:' .. g, s = 's:' .. g } }
    end
    parsed_gq[gq] = out
  end
  return out
end

-- "s1;s2" -> { 's1', 's2' }
local NO_SEATS = {}
local function seat_list(s)
  if s == '' then
    return NO_SEATS
  end
  local out = {}
  for id in string.gmatch(s, '[^;]+') do
    out[#out + 1] = id
  end
  return out
end

-- Moves a hold's units between 'a' (available), 'h' (held) and 's' (sold), and its seats to
-- the matching state.
local SEAT_STATE = { a = 'A', h = 'H', s = 'S' }
local function move(gq, seat_ids, from, to)
  for _, p in ipairs(grade_counts(gq)) do
    if from ~= 'h' then
      stock_add(p[3][from], -p[2])
    end
    if to ~= 'h' then
      stock_add(p[3][to], p[2])
    end
  end
  local state = SEAT_STATE[to]
  for _, s in ipairs(seat_list(seat_ids)) do
    set_seat(s, state)
  end
end

-- Takes every unit or seat from 'a' into `to` ('h' or 's'), or nothing: returns the refusal
-- as JSON when something is missing.
local function take(gq, seat_ids, to)
  local busy = {}
  for _, s in ipairs(seat_list(seat_ids)) do
    if seat_state(s) ~= 'A' then
      busy[#busy + 1] = s
    end
  end
  if #busy > 0 then
    return cjson.encode({ code = 'SEATS_UNAVAILABLE', seats = busy })
  end
  for _, p in ipairs(grade_counts(gq)) do
    local available = stock_value(p[3].a)
    if available < p[2] then
      return cjson.encode({ code = 'SOLD_OUT', grade = p[1], requested = p[2], available = available })
    end
  end
  move(gq, seat_ids, 'a', to)
  return nil
end

-- Units available and held over every grade.
local function stock_totals()
  local all = redis.call('HGETALL', K_STOCK)
  local available, capacity, sold = 0, 0, 0
  for i = 1, #all, 2 do
    local f = all[i]
    local n = tonumber(all[i + 1]) + (stock_delta[f] or 0)
    local c = string.sub(f, 1, 2)
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

local function is_live(state)
  return state == 'HELD' or state == 'PAYING'
end

-- Units the user holds (unexpired) or bought in the session.
local function counted_units(user, now)
  local ids = user_hold_ids(user)
  if #ids == 0 then
    return 0
  end
  prefetch_holds(ids)
  local total = 0
  for _, id in ipairs(ids) do
    local h = holds[id]
    if h then
      local st = h[H_STATE]
      if st == 'CONFIRMED' or (is_live(st) and now < tonumber(h[H_EXP])) then
        total = total + tonumber(h[H_UNITS])
      end
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

-- Queue tickets: the user's latest ticket, packed (TICKET_FIELDS joined by SEP) in the
-- `tickets` hash, cached as tables. `aud` holds the audit references of all the user's
-- tickets in the session.
local TICKET_FIELDS = { 'id', 'st', 'pq', 'seq', 'jat', 'aat', 'exp', 'aud' }
local K_TICKETS = B .. 'tickets'

local function unpack_ticket(s)
  local t, start = {}, 1
  for i, f in ipairs(TICKET_FIELDS) do
    local j = string.find(s, SEP, start, true)
    if j then
      t[f] = string.sub(s, start, j - 1)
      start = j + 1
    else
      t[f] = string.sub(s, start)
      start = #s + 2
    end
  end
  return t
end

local function pack_ticket(t)
  local f = {}
  for i, name in ipairs(TICKET_FIELDS) do
    f[i] = t[name]
  end
  return table.concat(f, SEP)
end

local TICKETS = cached_hash(K_TICKETS, unpack_ticket, pack_ticket)
local tickets = TICKETS.values

local function prefetch_tickets(users)
  prefetch(TICKETS, users)
end

local function load_ticket(user)
  return load(TICKETS, user)
end

local function save_ticket(user, t)
  save(TICKETS, user, t)
end

-- A ticket as returned to Rust: the first seven TICKET_FIELDS.
local function ticket_reply(t)
  return { t.id, t.st, t.pq, t.seq, t.jat, t.aat, t.exp }
end

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
