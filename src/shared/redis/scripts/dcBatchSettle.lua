--[[
  Sets a batch's status. 'processing' starts a run and leaves a completed batch alone;
  'completed' / 'failed' set completedAt; 'completed' also drops the operations.

  Input:
    KEYS[1] batch hash
    KEYS[2] operations
    KEYS[3] confirmed bitmap
    KEYS[4] errors hash
    KEYS[5] idempotency record

    ARGV[1] status
    ARGV[2] now (ISO)
    ARGV[3] error
    ARGV[4] retention ms

  Output:
    the status before, or false when the batch is gone.
]]
local before = redis.call('HGET', KEYS[1], 'status')
if not before then return false end
if before == 'completed' then return before end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'error', ARGV[3])
if ARGV[1] == 'processing' then
  if (redis.call('HGET', KEYS[1], 'startedAt') or '') == '' then redis.call('HSET', KEYS[1], 'startedAt', ARGV[2]) end
  redis.call('HSET', KEYS[1], 'completedAt', '')
  redis.call('HINCRBY', KEYS[1], 'runs', 1)
elseif ARGV[1] ~= 'retrying' then
  redis.call('HSET', KEYS[1], 'completedAt', ARGV[2])
end
if ARGV[1] == 'completed' then redis.call('UNLINK', KEYS[2]) end
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return before
