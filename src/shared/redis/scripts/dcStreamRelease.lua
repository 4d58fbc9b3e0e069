--[[
  Gives a shard lease of the Streams follower up, only this holder's, and removes its expiry from the
  table's live hash (so /metrics stops counting the shard as held at once).

  Input:
    KEYS[1] the lease key
    KEYS[2] the table's live hash

    ARGV[1] the holder's token
    ARGV[2] shard id

  Output:
    1 when the lease was this holder's and is gone, 0 otherwise (another holder's expiry is left alone).
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], 'e:' .. ARGV[2])
if not holder then return 0 end
redis.call('DEL', KEYS[1])
return 1
