--[[
  Claims the send of an export's email before SES is called.

  Input:
    KEYS[1] record hash

    ARGV[1] the claim field
    ARGV[2] the claim

  Output:
    1 when claimed, the claim already held (an earlier attempt's), or 0 when the export is gone.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return held end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
