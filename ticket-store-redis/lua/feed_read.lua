-- Changes after ARGV[3], oldest first, at most ARGV[4], changing nothing (see lib/feed.lua
-- for the stream's layout). Reply: {'ok', head, {seq, packed change, ...}} |
-- {'pruned', first kept seq} | {'nf'} (unknown session).
if redis.call('EXISTS', B .. 'def') == 0 then
  return { 'nf' }
end
local head = tonumber(redis.call('HGET', K_STOCK, 'fseq') or '0')
local after, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
if after >= head then
  return { 'ok', head, out }
end
local first = redis.call('XRANGE', K_FEED, '-', '+', 'COUNT', 1)
local first_kept = head + 1
if first[1] then
  first_kept = tonumber(first[1][2][1])
end
if after + 1 < first_kept then
  return { 'pruned', first_kept }
end
-- The entry holding after + 1 is the first whose id (its last seq) is at least after + 1.
local start = '0-' .. string.format('%d', after + 1)
while #out < 2 * limit do
  local entries = redis.call('XRANGE', K_FEED, start, '+', 'COUNT', 16)
  if #entries == 0 then
    break
  end
  for _, e in ipairs(entries) do
    local f = e[2]
    for j = 1, #f, 2 do
      if #out < 2 * limit and tonumber(f[j]) > after then
        out[#out + 1] = f[j]
        out[#out + 1] = f[j + 1]
      end
    end
    start = '(' .. e[1]
  end
end
return { 'ok', head, out }
