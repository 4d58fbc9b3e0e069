--[[
  Stores a new batch, or names the batch an Idempotency-Key already made.

  Input:
    KEYS[1] batch hash
    KEYS[2] operations
    KEYS[3] idempotency record (KEYS[1] again when there is none)

    ARGV[1] fingerprint ('' without Idempotency-Key)
    ARGV[2] new id
    ARGV[3] retention ms
    ARGV[4] operations blob
    ARGV[5..] field/value pairs of the hash

  Output:
    { 'created', id }, { 'existing', id } (same fingerprint) or { 'conflict', id }.
]]
if ARGV[1] ~= '' then
  if not redis.call('SET', KEYS[3], ARGV[1] .. ' ' .. ARGV[2], 'NX', 'PX', ARGV[3]) then
    local record = redis.call('GET', KEYS[3])
    local sep = string.find(record, ' ', 1, true)
    local id = string.sub(record, sep + 1)
    if string.sub(record, 1, sep - 1) ~= ARGV[1] then return { 'conflict', id } end
    return { 'existing', id }
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
return { 'created', ARGV[2] }
