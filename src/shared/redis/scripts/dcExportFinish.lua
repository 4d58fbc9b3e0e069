--[[
  Moves a queued or processing export to the target status (completed only from processing), sets
  completedAt (and progress 100, file and size when completed, error when given), appends the event.

  Input:
    KEYS[1] record hash
    KEYS[2] events stream

    ARGV[1] target status (completed, failed, cancelled)
    ARGV[2] now (ms)
    ARGV[3] error ('' for none)
    ARGV[4] file name ('' for none)
    ARGV[5] file size in bytes
    ARGV[6] stream max length

  Output:
    { status before ('' if gone), 1 if it changed else 0 }.
]]
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return { '', 0 } end
local target = ARGV[1]
if not (from == 'processing' or (from == 'queued' and target ~= 'completed')) then return { from, 0 } end
redis.call('HSET', KEYS[1], 'status', target, 'completedAt', ARGV[2])
if target == 'completed' then
  redis.call('HSET', KEYS[1], 'progress', 100, 'file', ARGV[4], 'bytes', ARGV[5])
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
local f = redis.call('HMGET', KEYS[1], 'progress', 'processedItems')
local data = { status = target, progress = tonumber(f[1]) or 0, processedItems = tonumber(f[2]) or 0 }
if target == 'completed' then data.bytes = tonumber(ARGV[5]) end
if ARGV[3] ~= '' then data.error = ARGV[3] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', target, 'data', cjson.encode(data))
return { from, 1 }
