-- What every state change writes besides itself, in the same script: its audit record, the
-- change it makes in the session's feed, the counts it moves and the user's index. The rules
-- are ticket-core's (the memory backend's SessionState::record, emit, note_stock and
-- count_hold_change), repeated here because they must be written in the same atomic step.

-- ChangeKind::of_transition: the change a hold or a queue ticket reaching a state makes (as
-- ChangeKind::as_str names it). A gate scan (VALID -> USED of a hold) makes none.
local HOLD_CHANGE = { HELD = 'hold_created', PAYING = 'hold_paying', CONFIRMED = 'hold_confirmed',
  EXPIRED = 'hold_expired', RELEASED = 'hold_released', PAYMENT_FAILED = 'hold_payment_failed',
  CANCELLED = 'hold_cancelled', REFUNDED = 'hold_refunded' }
local TICKET_CHANGE = { WAITING = 'joined', ACTIVE = 'admitted', EXPIRED = 'admission_expired',
  USED = 'admission_used', LEFT = 'left' }
-- The session's own records (the sale switch, capacity changes), by their `to`.
local SESSION_CHANGE = { PAUSED = 'sale_paused', OPEN = 'sale_resumed', CLOSED = 'sale_closed',
  CANCELLED = 'sale_cancelled', CAPACITY_CHANGED = 'capacity_changed' }

-- Feed ---------------------------------------------------------------------------------
-- Changes of this call, flat: seq, packed change, seq, packed change, ... A packed change is
-- kind, at, subject kind ('h'/'t'/'s'/''), subject, owner, line joined by SEP. commit() writes
-- them to the `feed` stream as entries whose id is `0-<last seq in the entry>` and whose
-- fields are `<seq> <packed change>`, so XRANGE and XREAD by sequence number are direct.
local changes -- set per call by begin_feed, like records and SESSION_SALT

local function emit(kind, at, subject_kind, subject, owner, line)
  stock_add('fseq', 1)
  changes[#changes + 1] = string.format('%d', stock_value('fseq'))
  changes[#changes + 1] = kind .. SEP .. at .. SEP .. subject_kind .. SEP .. subject .. SEP .. owner
    .. SEP .. line
end

-- Announces SoldOut when no unit is left, once until units come back.
local function note_stock(at)
  local available = stock_available()
  local announced = stock_value('so')
  if available == 0 and announced == 0 then
    stock_add('so', 1)
    emit('sold_out', at, '', '', '', '')
  elseif available > 0 and announced ~= 0 then
    stock_add('so', -announced)
  end
end

-- Hold-state counters and PAYING units for hold `h` going `from` -> `to` (records that are
-- not hold-state changes, like gate scans, move nothing).
local function count_hold_change(h, from, to)
  if not HOLD_CHANGE[to] or (from and not HOLD_CHANGE[from]) then
    return
  end
  if from then
    stock_add('n:' .. from, -1)
  end
  stock_add('n:' .. to, 1)
  local sign = 0
  if to == 'PAYING' and from ~= 'PAYING' then
    sign = 1
  elseif from == 'PAYING' and to ~= 'PAYING' then
    sign = -1
  end
  if sign ~= 0 then
    for _, p in ipairs(grade_counts(h[H_GQ])) do
      stock_add('p:' .. p[1], sign * p[2])
    end
  end
end

-- Audit ----------------------------------------------------------------------------------
-- Records of this call: { id, packed, owner }. commit() writes them to the `arec` hash
-- (id -> packed record: id, at, kind, subject, owner, actor, from, to, reason, correlation
-- id joined by SEP), the `alog` sorted set (score 0, member id: ids sort as (at, id), see
-- audit_id) and each owner's index (member `a:<id>:<session>`). A hold's record ids are
-- also listed in its `aud` field.
local records

-- AuditId::sequenced(at, n, session) in its simple (unhyphenated) form: 12 hex digits of
-- the milliseconds, '7', 3 hex digits of (n >> 30) & 0xFFF, 8 of 0x80000000 + n mod 2^30,
-- then the session id's last 8 hex digits (Lua numbers are doubles: every part is built
-- from values below 2^32). The time comes first, then n, so the ids of a session's records
-- sort by (at, n): by (at, id), in write order within a millisecond.
local SESSION_SALT

local function audit_id(at_s, n)
  local ms = math.max(tonumber(at_s), 0) % 281474976710656
  return string.format('%06x%06x7%03x%08x', math.floor(ms / 16777216), ms % 16777216,
    math.floor(n / 1073741824) % 4096, 2147483648 + n % 1073741824) .. SESSION_SALT
end

-- Numbers and files a record whose packed fields after the id are `tail`, and makes its
-- change, counts and index entries. `kind` is 'h' (hold), 't' (queue ticket of `owner`) or
-- 's' (the session itself; `owner` is the actor's id).
local function record(tail, at, kind, subject, owner, from, to)
  -- A session's records never go back in time: a record whose caller's clock is behind the
  -- previous record's instant takes that instant ('lat'), so (at, id) is write order.
  local last = stock_value('lat')
  local at_n = tonumber(at)
  if at_n < last then
    at = string.format('%d', last)
    local sep = string.find(tail, SEP, 1, true)
    tail = at .. (sep and string.sub(tail, sep) or '')
  elseif at_n > last then
    stock_add('lat', at_n - last)
  end
  stock_add('aseq', 1)
  local id = audit_id(at, stock_value('aseq'))
  records[#records + 1] = { id, id .. SEP .. tail, owner }
  local change, line = nil, ''
  if kind == 'h' then
    local h = load_hold(subject)
    if h then
      h[H_AUD] = (h[H_AUD] == '') and id or (h[H_AUD] .. ' ' .. id)
      save_hold(subject, h)
      count_hold_change(h, from, to)
    end
    change = HOLD_CHANGE[to]
  elseif kind == 's' then
    change = SESSION_CHANGE[to]
  else
    change = TICKET_CHANGE[to]
    local t = load_ticket(owner)
    line = t and t.seq or ''
  end
  if change then
    emit(change, at, kind, subject, owner, line)
    if kind ~= 't' then
      note_stock(at)
    end
  end
end

local function audit(at, actor, kind, subject, owner, from, to, reason, corr)
  record(table.concat({ at, kind, subject, owner, actor, from or '', to, reason, corr or '' }, SEP),
    at, kind, subject, owner, from, to)
end

-- A record packed by the caller (same layout, any 32 characters as its id: replaced here).
local function audit_packed(packed, at, kind, subject, owner, from, to)
  record(string.sub(packed, 34), at, kind, subject, owner, from, to)
end

-- Writes the audit records and the changes of this call.
local function flush_records()
  if #records > 0 then
    local fields, members = {}, {}
    for _, r in ipairs(records) do
      fields[#fields + 1] = r[1]
      fields[#fields + 1] = r[2]
      members[#members + 1] = 0
      members[#members + 1] = r[1]
      zadd(user_key(r[3]), 0, 'a:' .. r[1] .. ':' .. SESSION)
    end
    call_chunked('HSET', K_AREC, fields, 1000)
    call_chunked('ZADD', K_ALOG, members, 1000)
    records = {}
  end
  if #changes > 0 then
    -- Trimmed exactly to the newest FEED_KEEP changes, by entry: an entry is dropped once
    -- its last change is older, so a little more may be kept (at most one call's changes).
    local min_id = stock_value('fseq') - FEED_KEEP + 1
    for i = 1, #changes, 1000 do
      local last = math.min(i + 999, #changes)
      local args = { K_FEED }
      if min_id > 1 then
        args[2], args[3] = 'MINID', '0-' .. string.format('%d', min_id)
      end
      args[#args + 1] = '0-' .. changes[last - 1]
      for k = i, last do
        args[#args + 1] = changes[k]
      end
      redis.call('XADD', unpack(args))
    end
    changes = {}
  end
end

local function begin_feed(session_changed)
  changes, records = emptied(changes), emptied(records)
  if session_changed then
    SESSION_SALT = string.sub(SESSION, -8)
  end
end
