--[[
  Releases a fill lock only if this holder still owns it.

  Input:
    KEYS[1] the lock key

    ARGV[1] the holder's token

  Output:
    1 when the lock was deleted, 0 when another holder has it (or it expired).
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
