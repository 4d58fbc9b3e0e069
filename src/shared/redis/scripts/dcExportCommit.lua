--[[
  Saves a segment's checkpoint if the export is processing and the caller still owns the segment;
  moves the export's counters by the segment's change; raises progress over the scan phase (0-95) from
  DescribeTable's count when known (never below the share of finished segments), else from the
  segments' fractions; appends a progress event when it rose.

  Input:
    KEYS[1] record hash
    KEYS[2] segments hash
    KEYS[3] events stream

    ARGV[1] segment
    ARGV[2] owner token
    ARGV[3] checkpoint JSON
    ARGV[4] the segment's rows so far
    ARGV[5] its scanned items so far
    ARGV[6] its fraction done (0..1)
    ARGV[7] number of segments
    ARGV[8] stream max length

  Output:
    'ok', 'fenced', the export's status when not processing, or '' when it is gone.
]]
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return '' end
if st ~= 'processing' then return st end
local seg = ARGV[1]
if redis.call('HGET', KEYS[2], 'own:' .. seg) ~= ARGV[2] then return 'fenced' end
local prev = redis.call('HMGET', KEYS[2], 'r:' .. seg, 's:' .. seg)
redis.call('HSET', KEYS[2], 'cp:' .. seg, ARGV[3], 'r:' .. seg, ARGV[4], 's:' .. seg, ARGV[5], 'f:' .. seg, ARGV[6])
local processed = redis.call('HINCRBY', KEYS[1], 'processedItems', tonumber(ARGV[4]) - (tonumber(prev[1]) or 0))
local scanned = redis.call('HINCRBY', KEYS[1], 'scannedItems', tonumber(ARGV[5]) - (tonumber(prev[2]) or 0))
local n = tonumber(ARGV[7])
local fields = {}
for i = 0, n - 1 do fields[i + 1] = 'f:' .. i end
local sum, done = 0, 0
local fractions = redis.call('HMGET', KEYS[2], unpack(fields))
for i = 1, n do
  local v = tonumber(fractions[i]) or 0
  sum = sum + v
  if v >= 1 then done = done + 1 end
end
local fraction = sum / n
local expected = tonumber(redis.call('HGET', KEYS[1], 'expectedItems')) or 0
if expected > 0 then fraction = math.max(math.min(1, scanned / expected), done / n) end
local progress = math.floor(95 * fraction)
if progress > (tonumber(redis.call('HGET', KEYS[1], 'progress')) or 0) then
  redis.call('HSET', KEYS[1], 'progress', progress)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'type', 'progress', 'data',
    cjson.encode({ status = st, progress = progress, processedItems = processed }))
end
return 'ok'
