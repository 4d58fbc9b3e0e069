--[[
  Renews a held member's lease (and renames it); both keys expire with the last lease.

  Input:
    KEYS[1] members (sorted set, score = lease expiry ms)
    KEYS[2] weights (hash, member -> bytes)

    ARGV[1] member
    ARGV[2] new lease expiry ms
    ARGV[3] new name ('' = keep)
    ARGV[4] now ms

  Output:
    1, or 0 when the member is no longer held.
]]
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local member = ARGV[1]
if ARGV[3] ~= '' then
  local weight = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[3], weight)
  member = ARGV[3]
end
redis.call('ZADD', KEYS[1], ARGV[2], member)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = math.max(1, tonumber(last[2]) - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 1
