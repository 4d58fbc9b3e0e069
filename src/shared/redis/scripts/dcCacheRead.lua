--[[
  Reads a cache entry and its table's generation in one round trip; skips the body when the
  caller's ETag matches. The hash fields g, m, e, b are ENTRY_FIELDS (src/shared/cache/entry-layout.ts).

  Input:
    KEYS[1] the table's generation key
    KEYS[2] the entry hash

    ARGV[1] an ETag the caller already has ('' for none)

  Output:
    { generation } on a miss or an entry of another generation,
    { generation, meta } when the ETag matched,
    else { generation, meta, body or false (the body is in chunk keys) }.
]]
local gen = redis.call('GET', KEYS[1]) or '0'
local f = redis.call('HMGET', KEYS[2], 'g', 'm', 'e')
if not f[2] or f[1] ~= gen then return { gen } end
if ARGV[1] ~= '' and ARGV[1] == f[3] then return { gen, f[2] } end
return { gen, f[2], redis.call('HGET', KEYS[2], 'b') }
