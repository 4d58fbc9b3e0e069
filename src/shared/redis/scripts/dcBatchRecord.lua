--[[
  Saves one BatchWriteItem call: confirmed operations (each counted once), refused operations with
  their reasons, and the call itself.

  Input:
    KEYS[1] batch hash
    KEYS[2] operations
    KEYS[3] confirmed bitmap
    KEYS[4] errors hash

    ARGV[1] calls made
    ARGV[2] retention ms
    ARGV[3] n = confirmed count
    ARGV[4..3+n] confirmed indexes, then index/reason pairs of refused operations

  Output:
    { written, failed, attempts }, or false when the batch is gone.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = tonumber(ARGV[3])
local written = 0
for i = 4, 3 + n do
  if redis.call('SETBIT', KEYS[3], ARGV[i], 1) == 0 then written = written + 1 end
end
local failed = 0
for i = 4 + n, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[4], ARGV[i], ARGV[i + 1]) == 1 then failed = failed + 1 end
end
local result = {
  redis.call('HINCRBY', KEYS[1], 'written', written),
  redis.call('HINCRBY', KEYS[1], 'failed', failed),
  redis.call('HINCRBY', KEYS[1], 'attempts', ARGV[1]),
}
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return result
