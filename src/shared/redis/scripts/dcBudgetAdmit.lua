--[[
  Admits a DynamoDB call against the table's capacity budget for this second and reserves units.

  Input:
    KEYS[1] the table's counter for this second

    ARGV[1] the limit for the caller's priority
    ARGV[2] the units to reserve

  Output:
    1 (and reserves) when the second's consumption is below the limit, 0 when it already reached it.
]]
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 5)
return 1
