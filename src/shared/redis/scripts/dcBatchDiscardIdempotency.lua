--[[
  Deletes an idempotency record only while it still names this batch.

  Input:
    KEYS[1] idempotency record

    ARGV[1] batch id

  Output:
    1 when deleted, else 0.
]]
local record = redis.call('GET', KEYS[1])
if record and string.sub(record, -#ARGV[1] - 1) == ' ' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
