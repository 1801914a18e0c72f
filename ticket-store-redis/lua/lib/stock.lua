-- Stock counters and seat states, cached per call; taking and moving units.

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

