--[[
  Bumps generations (invalidation; see dcCacheRead.lua for the value format) and announces it on the
  invalidation channel, in one step. A hard bump leaves `n`, a soft one `n/h` keeping h, the value at
  the last hard bump, so a reader can tell which entries may still be served once. All keys share one
  table's hash tag (PUBLISH reaches subscribers on every Cluster node).

  Flagged allow-oom (the shebang below; Redis 7.0 or later): a Redis that is full under noeviction
  refuses writes, and a write to DynamoDB whose bump were refused would leave the entries it changed
  answering as fresh until their TTL. A bump adds a few bytes at most.

  Input:
    KEYS[1..] generation keys

    ARGV[1] 'soft' or 'hard'
    ARGV[2] ms each key is kept after this bump (0: no expiry; a table's own generation)
    ARGV[3] the invalidation channel
    ARGV[4] the message to publish on it ('' for none)

  Output:
    the value each key holds after the bump, in KEYS order (a write-through stores under these, so a
    slower writer's older image is stored under generations that are already gone)
]]
#!lua flags=allow-oom
local soft = ARGV[1] == 'soft'
local keep = tonumber(ARGV[2])
local values = {}
for _, key in ipairs(KEYS) do
  local value = redis.call('GET', key) or '0'
  local n = tonumber(string.match(value, '^%d+')) or 0
  local next = tostring(n + 1)
  if soft then next = next .. '/' .. (string.match(value, '/(%d+)$') or tostring(n)) end
  if keep > 0 then
    redis.call('SET', key, next, 'PX', keep)
  else
    redis.call('SET', key, next)
  end
  values[#values + 1] = next
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return values
