-- Checks one ticket of a hold in at the gate, atomically with every transition of the hold
-- (the rules of ticket_core::model::check_in::decide_check_in, repeated here because the
-- check and the mark must be one step; the session was compared in Rust: a hold's session
-- never changes). ARGV[3] now, ARGV[4] hold id, ARGV[5] ticket number (1..=100, canonical),
-- ARGV[6] the state whose tickets are let in (CONFIRMED), ARGV[7] gate, ARGV[8] actor (JSON),
-- ARGV[9] reason, ARGV[10] correlation id, ARGV[11] / ARGV[12] the audit record's from / to.
-- Marks: the hash `used:<hold id>`, ticket number -> "<at>SEP<gate>", written once.
-- Reply: {'first', at} | {'used', at, gate} | {'err', refusal JSON} | {'nf'}.
local now_s, id, n_s, allowed = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local gate, actor, reason, corr = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local h = load_hold(id)
if not h then
  return { 'nf' }
end
local n, units = tonumber(n_s), tonumber(h[H_UNITS])
if n < 1 or n > units then
  return { 'err', cjson.encode({ code = 'TICKET_OUT_OF_RANGE', ticket = n, tickets = units }) }
end
if h[H_STATE] ~= allowed then
  return { 'err', cjson.encode({ code = 'NOT_CONFIRMED', state = h[H_STATE] }) }
end
local key = B .. 'used:' .. id
local first = redis.call('HGET', key, n_s)
if first then
  local sep = string.find(first, SEP, 1, true)
  return { 'used', string.sub(first, 1, sep - 1), string.sub(first, sep + 1) }
end
redis.call('HSET', key, n_s, now_s .. SEP .. gate)
audit(now_s, actor, 'h', id, h[H_USER], ARGV[11], ARGV[12], reason, corr)
commit()
return { 'first', now_s }
