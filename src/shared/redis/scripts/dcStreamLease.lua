--[[
  Takes a shard lease of the Streams follower, or renews it when this holder has it already, and for a
  shard records the lease's expiry (and, when asked, that a read just found the shard's tip) in the
  table's live hash, which the API's /metrics reads. Times are Redis's (TIME), in ms.

  Input:
    KEYS[1] the lease key
    KEYS[2] the table's live hash

    ARGV[1] the holder's token
    ARGV[2] lease ms
    ARGV[3] shard id ('' = a lease that is no shard's: nothing recorded)
    ARGV[4] '1' when a read since the last record applied found the shard's tip (no record beyond it)

  Output:
    1 when this holder has the lease now, 0 when another holder has it (nothing changed).
]]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif holder then
  return 0
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[2], 'e:' .. ARGV[3], string.format('%d', now + tonumber(ARGV[2])))
  if ARGV[4] == '1' then redis.call('HSET', KEYS[2], 't:' .. ARGV[3], string.format('%d', now)) end
end
return 1
