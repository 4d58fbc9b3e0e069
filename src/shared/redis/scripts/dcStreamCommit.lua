--[[
  Records a shard's progress only while this holder still has its lease (a holder that lost it cannot
  move the checkpoint of the one that took over), renews the lease, and with an audit length appends
  the sequence numbers applied. In the same step it keeps what the API's /metrics reads: the table's
  count of records applied (stats hash) and, per shard, the lease's expiry and the last applied
  record's creation time (live hash; a new record clears the shard's tip mark, a done shard leaves it).
  Times are Redis's (TIME), in ms, except the records' creation time, which is the stream's.

  Input:
    KEYS[1] the lease key
    KEYS[2] the table's shards hash (shard id -> state)
    KEYS[3] the shard's audit list
    KEYS[4] the table's stats hash (field `applied`: records applied, fleet-wide)
    KEYS[5] the table's live hash (fields `e:<shard>`, `c:<shard>`, `t:<shard>`)

    ARGV[1] the holder's token
    ARGV[2] lease ms
    ARGV[3] shard id
    ARGV[4] new state ('c:<sequence number>' checkpoint, 'd' done, '' = none: read from the trim horizon)
    ARGV[5] audit list length kept (0 = no audit)
    ARGV[6] records applied by this step (0 = none)
    ARGV[7] the last applied record's approximate creation time, ms ('' = unknown)
    ARGV[8..] sequence numbers applied, in order (for the audit)

  Output:
    1, or 0 when the lease is no longer this holder's (nothing changed).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], ARGV[3])
else
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
local keep = tonumber(ARGV[5])
if keep > 0 and #ARGV > 7 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 8))
  redis.call('LTRIM', KEYS[3], -keep, -1)
end
local applied = tonumber(ARGV[6])
if applied > 0 then redis.call('HINCRBY', KEYS[4], 'applied', applied) end
local shard = ARGV[3]
if ARGV[4] == 'd' then
  -- Read to its end: no longer a shard that can lag.
  redis.call('HDEL', KEYS[5], 'e:' .. shard, 'c:' .. shard, 't:' .. shard)
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[5], 'e:' .. shard, string.format('%d', now + tonumber(ARGV[2])))
if applied > 0 then
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[5], 'c:' .. shard, ARGV[7]) end
  redis.call('HDEL', KEYS[5], 't:' .. shard)
end
return 1
