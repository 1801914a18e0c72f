-- Queue tickets: the user's latest ticket, packed (TICKET_FIELDS joined by SEP) in the
-- `tickets` hash, cached as tables. `aud` is kept empty (it listed audit references before
-- the audit trail got its own indexes, lib/feed.lua).
local TICKET_FIELDS = { 'id', 'st', 'pq', 'seq', 'jat', 'aat', 'exp', 'aud' }
local K_TICKETS -- set per call by begin_tickets, like TICKETS and tickets

-- The eight fields in one pattern match (one C call instead of a find and a sub per field).
local TICKET_PATTERN = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$'

local function unpack_ticket(s)
  local id, st, pq, seq, jat, aat, exp, aud = string.match(s, TICKET_PATTERN)
  if id then
    return { id = id, st = st, pq = pq, seq = seq, jat = jat, aat = aat, exp = exp, aud = aud }
  end
  -- Fewer fields than TICKET_FIELDS: the missing ones are empty.
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

-- TICKET_FIELDS joined by SEP (one concatenation, no intermediate table).
local function pack_ticket(t)
  return t.id .. SEP .. t.st .. SEP .. t.pq .. SEP .. t.seq .. SEP .. t.jat .. SEP .. t.aat .. SEP
    .. t.exp .. SEP .. t.aud
end

local TICKETS, tickets

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

local function begin_tickets(session_changed)
  if session_changed then
    K_TICKETS = B .. 'tickets'
  end
  TICKETS = reset_cache(TICKETS, K_TICKETS, unpack_ticket, pack_ticket)
  tickets = TICKETS.values
end
