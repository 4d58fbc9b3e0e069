--[[
  Releases members.

  Input:
    KEYS[1] members (sorted set, score = lease expiry ms)
    KEYS[2] weights (hash, member -> bytes)

    ARGV[1..] the members to release

  Output:
    how many of them were held.
]]
for _, m in ipairs(ARGV) do redis.call('HDEL', KEYS[2], m) end
return redis.call('ZREM', KEYS[1], unpack(ARGV))
