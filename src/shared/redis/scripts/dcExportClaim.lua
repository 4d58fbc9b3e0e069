--[[
  Starts a queued export (processing, startedAt, progress event) and records the owner of the
  segment while the export is processing.

  Input:
    KEYS[1] record hash
    KEYS[2] segments hash
    KEYS[3] events stream

    ARGV[1] segment
    ARGV[2] owner token
    ARGV[3] now (ms)
    ARGV[4] stream max length

  Output:
    { status, checkpoint JSON or false }; { status } when not processing; { '' } when the export is gone.
]]
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return { '' } end
if st == 'queued' then
  st = 'processing'
  redis.call('HSET', KEYS[1], 'status', st, 'startedAt', ARGV[3])
  local f = redis.call('HMGET', KEYS[1], 'progress', 'processedItems')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'type', 'progress', 'data',
    cjson.encode({ status = st, progress = tonumber(f[1] or '0'), processedItems = tonumber(f[2] or '0') }))
end
if st ~= 'processing' then return { st } end
redis.call('HSET', KEYS[2], 'own:' .. ARGV[1], ARGV[2])
return { st, redis.call('HGET', KEYS[2], 'cp:' .. ARGV[1]) }
