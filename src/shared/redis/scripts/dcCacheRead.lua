--[[
  Reads a cache entry and the generations it depends on in one round trip; skips the body when the
  caller's ETag matches. The hash fields d, m, e, b are ENTRY_FIELDS (src/shared/cache/entry-layout.ts).
  A generation is `n` after a hard bump, `n/h` after a soft one (h: its value at the last hard bump).
  The composite is the generations' values joined by ','; an entry is valid when it was written under
  the current composite. One that differs only by soft bumps made after it was written is served once
  (its composite is then cleared, so the next read misses) when ARGV[2] is '1'.

  Input:
    KEYS[1] the entry hash
    KEYS[2..] the table's generation key, then the entry's dependency generation keys

    ARGV[1] an ETag the caller already has ('' for none)
    ARGV[2] '1' when an entry invalidated softly may be served (once), else ''

  Output:
    { composite, '' } on a miss (no entry, or one of other generations),
    { composite, how, meta } when the ETag matched,
    else { composite, how, meta, body or false (the body is in chunk keys) };
    how is 'f' (current) or 's' (invalidated softly, served this once).
]]
local current = redis.call('MGET', unpack(KEYS, 2))
for i = 1, #current do
  if not current[i] then current[i] = '0' end
end
local composite = table.concat(current, ',')
local f = redis.call('HMGET', KEYS[1], 'd', 'm', 'e')
if not f[2] or not f[1] then return { composite, '' } end

local how = 'f'
if f[1] ~= composite then
  if ARGV[2] ~= '1' then return { composite, '' } end
  local i = 0
  for written in string.gmatch(f[1], '[^,]+') do
    i = i + 1
    local now = current[i]
    if now == nil then return { composite, '' } end
    if written ~= now then
      local hard = string.match(now, '/(%d+)$')
      local n = tonumber(string.match(written, '^%d+'))
      -- Softly only if every bump since this entry was written was soft.
      if not hard or not n or n < tonumber(hard) then return { composite, '' } end
    end
  end
  if i ~= #current then return { composite, '' } end
  redis.call('HSET', KEYS[1], 'd', '-')
  how = 's'
end
if ARGV[1] ~= '' and ARGV[1] == f[3] then return { composite, how, f[2] } end
return { composite, how, f[2], redis.call('HGET', KEYS[1], 'b') }
