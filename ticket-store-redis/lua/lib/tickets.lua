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

