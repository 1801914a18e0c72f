-- Stock counters and seat states, cached per call; taking and moving units.

-- Stock ------------------------------------------------------------------------------
-- Counters of the `stock` hash, read all at once on first use (one HGETALL) and written back
-- at commit with one HSET:
--   'a:<grade>', 's:<grade>', 'c:<grade>'  available, sold, capacity (held is c - a - s, so
--                                          the three always add up to the capacity);
--   'p:<grade>'                            units of PAYING holds (part of held);
--   'n:<STATE>'                            holds in each state;
--   'fseq'                                 the change feed's head (last sequence number);
--   'aseq'                                 audit records written (numbers the audit ids);
--   'lat'                                  the latest record's instant (records never go
--                                          back in time);
--   'so'                                   1 once SoldOut was announced, until units return;
--   'sw', 'swat'                           the organiser's sale switch: its state (index in
--                                          SALE_STATES) and since when (ms; absent: OPEN
--                                          since creation). Its reason is the `swr` field of
--                                          the `def` hash.
-- Missing counters are 0. Every field is numeric (Rust reads the hash as integers).
-- Set per call by begin_stock, like SEATS and parsed_gq below.
local stock_base, stock_delta, stock_order, stock_grades

local function stock_load()
  if stock_base then
    return
  end
  stock_base = {}
  local all = redis.call('HGETALL', K_STOCK)
  for i = 1, #all, 2 do
    local f = all[i]
    stock_base[f] = tonumber(all[i + 1])
    if string.sub(f, 1, 2) == 'c:' then
      stock_grades[#stock_grades + 1] = string.sub(f, 3)
    end
  end
end

local function stock_value(f)
  stock_load()
  return (stock_base[f] or 0) + (stock_delta[f] or 0)
end

local function stock_add(f, d)
  if stock_delta[f] == nil then
    stock_delta[f] = 0
    stock_order[#stock_order + 1] = f
  end
  stock_delta[f] = stock_delta[f] + d
end

-- Writes the changed counters (absolute values: the script runs alone) with one HSET.
local function flush_stock()
  if #stock_order == 0 then
    return
  end
  stock_load()
  local args = {}
  for _, f in ipairs(stock_order) do
    local d = stock_delta[f]
    if d ~= 0 then
      local v = (stock_base[f] or 0) + d
      stock_base[f] = v
      args[#args + 1] = f
      args[#args + 1] = string.format('%d', v)
    end
  end
  if #args > 0 then
    redis.call('HSET', K_STOCK, unpack(args))
  end
  stock_delta, stock_order = {}, {}
end

-- Seat states ('A', 'H', 'S'), false for an unknown seat.
local SEATS

local function seat_state(s)
  return load(SEATS, s)
end

local function set_seat(s, state)
  save(SEATS, s, state)
end

-- "a:1;b:2" -> { {'a', 1}, {'b', 2} } (parsed once per call and value: the results are
-- shared, never modified).
local parsed_gq
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
  stock_load()
  local available, capacity, sold = 0, 0, 0
  for _, g in ipairs(stock_grades) do
    available = available + stock_value('a:' .. g)
    capacity = capacity + stock_value('c:' .. g)
    sold = sold + stock_value('s:' .. g)
  end
  return available, capacity - available - sold
end

-- Units available over every grade.
local function stock_available()
  stock_load()
  local available = 0
  for _, g in ipairs(stock_grades) do
    available = available + stock_value('a:' .. g)
  end
  return available
end

-- The sale switch ------------------------------------------------------------------------
-- ticket_core::model::sale::SaleState::ALL, in order: 'sw' is the index of the state.
local SALE_STATES = { [0] = 'OPEN', 'PAUSED', 'CLOSED', 'CANCELLED' }
local SALE_CODES = { OPEN = 0, PAUSED = 1, CLOSED = 2, CANCELLED = 3 }

-- SaleSwitch::refusal: what a new hold or re-booking meets while the switch is not OPEN, as
-- JSON (nil when OPEN). Read from the `stock` hash the hold loads anyway: no extra call.
local function sale_refusal()
  local sw = stock_value('sw')
  if sw == 0 then
    return nil
  end
  local since = string.format('%d', stock_value('swat'))
  if sw == 1 then
    return '{"code":"SALES_PAUSED"}'
  elseif sw == 2 then
    return '{"code":"SALES_CLOSED","closed_at":' .. since .. '}'
  end
  return '{"code":"SESSION_CANCELLED","cancelled_at":' .. since .. '}'
end

-- Sets a counter of the `stock` hash to `v` (written at commit).
local function stock_set(f, v)
  stock_add(f, v - stock_value(f))
end

local function begin_stock()
  stock_base = nil
  stock_delta, stock_order = emptied(stock_delta), emptied(stock_order)
  stock_grades, parsed_gq = emptied(stock_grades), emptied(parsed_gq)
  SEATS = reset_cache(SEATS, K_SEATS, same, same)
end
