--[[
  Drops expired members, then admits the member if both limits allow it (a member already held only
  has its lease renewed); both keys expire with the last lease.

  Input:
    KEYS[1] members (sorted set, score = lease expiry ms)
    KEYS[2] weights (hash, member -> bytes)

    ARGV[1] now ms
    ARGV[2] member
    ARGV[3] lease expiry ms
    ARGV[4] max members
    ARGV[5] member weight
    ARGV[6] max total weight (0 = no weight limit)

  Output:
    { 1, count, total } when admitted, { 0, 'count' | 'weight', count, total } when refused.
]]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, m in ipairs(expired) do redis.call('HDEL', KEYS[2], m) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local count = redis.call('ZCARD', KEYS[1])
local total = 0
local maxWeight = tonumber(ARGV[6])
if maxWeight > 0 then
  for _, w in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(w) end
end
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  if count >= tonumber(ARGV[4]) then return { 0, 'count', count, total } end
  if maxWeight > 0 and total + tonumber(ARGV[5]) > maxWeight then return { 0, 'weight', count, total } end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
  count = count + 1
  total = total + tonumber(ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = math.max(1, tonumber(last[2]) - tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return { 1, count, total }
