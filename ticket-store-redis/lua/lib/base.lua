-- The first of the shared files of the function library (see src/scripts.rs), in order:
-- base, holds, stock, tickets, feed, commit. They are loaded once (FUNCTION LOAD) and every
-- session function starts with begin(KEYS, ARGV) (lib/commit.lua), which sets the call's
-- session and resets every per-call cache and pending write below: a library keeps its
-- locals between calls, so nothing here may carry over from one call to the next.
--
-- KEYS[1] is the session's key prefix "<prefix>:{s:<session id>}:". Every key a script
-- touches is built from it, so all of them carry the session's hash tag and live in one
-- Redis Cluster slot; the client routes the call by KEYS[1].
-- ARGV[1] is the change feed's retention (changes kept per session), ARGV[2] the store's key
-- prefix, for the one key a session script writes outside its slot: each user's index
-- `<prefix>:{u:<user>}` (holds and audit records across sessions, see lib/feed.lua).
--
-- Scripts work on a unit of work: reads go through caches, changes are kept in them, and
-- commit() writes everything at the end with one command per key (one HSET for all holds
-- touched, one HSET and one ZADD for all audit records, one XADD for all changes, one ZADD
-- per sorted set, ...). A batch of requests thus costs a handful of Redis calls, not a
-- handful per request, and later requests of a batch see the effects of earlier ones
-- through the caches.
local SEP = '\31'
-- Set per call by begin_base.
local B, FEED_KEEP, PREFIX, SESSION
local K_HOLDS, K_UH, K_STOCK, K_SEATS, K_EXPB, K_ACT, K_AREC, K_ALOG, K_FEED, K_PAYING

-- Returns whether the session changed since the previous call: the key names (here and in
-- the other files' begin_*) only depend on it, so they are built again only then.
local function begin_base(keys, argv)
  FEED_KEEP = tonumber(argv[1])
  PREFIX = argv[2]
  if keys[1] == B then
    return false
  end
  B = keys[1]
  SESSION = string.match(B, '{s:([^}]*)}')
  K_HOLDS, K_UH, K_STOCK, K_SEATS = B .. 'holds', B .. 'uh', B .. 'stock', B .. 'seats'
  K_EXPB, K_ACT = B .. 'expb', B .. 'act'
  K_AREC, K_ALOG, K_FEED = B .. 'arec', B .. 'alog', B .. 'feed'
  -- PAYING holds by expiry (score: expires_at ms, member: hold id), kept by apply().
  K_PAYING = B .. 'paying'
  return true
end

-- The user's index across sessions. On Redis Cluster this key is in another slot than the
-- session: it is the one cross-slot write of the session scripts, fine on the single Redis
-- this crate targets (issue 21 moves it out of the scripts for Cluster).
local function user_key(user)
  return PREFIX .. ':{u:' .. user .. '}'
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

-- The per-call state of the next call: `t` itself when the previous call left it empty
-- (it always does unless it failed half-way), else a new table.
local function emptied(t)
  if t == nil or next(t) ~= nil then
    return {}
  end
  return t
end

-- A cache for the next call (begin_*), reusing the previous call's tables when empty.
local function reset_cache(c, key, decode, encode)
  if not c then
    return cached_hash(key, decode, encode)
  end
  c.key, c.values, c.dirty, c.order = key, emptied(c.values), emptied(c.dirty), emptied(c.order)
  return c
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

-- Sorted-set changes, written at commit --------------------------------------------------
local zadds, zrems

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

local function begin_zsets()
  zadds, zrems = emptied(zadds), emptied(zrems)
end
