-- Holds and each user's holds, cached per call; the per-user limit.

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

-- Holds ------------------------------------------------------------------------------
local function pack_hold(h)
  return table.concat(h, SEP, 1, H_DOC)
end

-- Set per call by begin_holds.
local HOLDS, holds, USER_HOLDS

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

-- Hold ids of each user, in creation order ('id id id' in the `uh` hash): USER_HOLDS.

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

local function begin_holds()
  HOLDS = reset_cache(HOLDS, K_HOLDS, unpack_hold, pack_hold)
  holds = HOLDS.values
  USER_HOLDS = reset_cache(USER_HOLDS, K_UH, same, same)
end
