--[[
  Raises a processing export's progress (never lowers it) and appends a progress event.

  Input:
    KEYS[1] record hash
    KEYS[2] events stream

    ARGV[1] progress
    ARGV[2] stream max length

  Output:
    the export's status, '' when it is gone.
]]
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'processing' then return st or '' end
local p = tonumber(ARGV[1])
if p > (tonumber(redis.call('HGET', KEYS[1], 'progress')) or 0) then
  redis.call('HSET', KEYS[1], 'progress', p)
  local processed = tonumber(redis.call('HGET', KEYS[1], 'processedItems')) or 0
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'progress', 'data',
    cjson.encode({ status = st, progress = p, processedItems = processed }))
end
return st
