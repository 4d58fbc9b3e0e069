import type { Result } from 'ioredis'

// The batch store's Lua scripts: each one step of a batch's life, atomic on its table's hash slot.

/*
 * KEYS[1] batch hash, KEYS[2] operations, KEYS[3] idempotency record (KEYS[1] again when there is none)
 * ARGV[1] fingerprint ('' without Idempotency-Key), ARGV[2] new id, ARGV[3] retention ms,
 * ARGV[4] operations blob, ARGV[5..] field/value pairs of the hash
 * Returns { 'created', id }, { 'existing', id } (same fingerprint) or { 'conflict', id }.
 */
export const CREATE_SCRIPT = `
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
`

/*
 * KEYS[1] batch hash, KEYS[2] operations, KEYS[3] confirmed bitmap, KEYS[4] errors hash
 * ARGV[1] calls made, ARGV[2] retention ms, ARGV[3] n = confirmed count, ARGV[4..3+n] confirmed indexes,
 * then index/reason pairs of refused operations.
 * Returns { written, failed, attempts }, or false when the batch is gone.
 */
export const RECORD_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = tonumber(ARGV[3])
local written = 0
for i = 4, 3 + n do
  if redis.call('SETBIT', KEYS[3], ARGV[i], 1) == 0 then written = written + 1 end
end
local failed = 0
for i = 4 + n, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[4], ARGV[i], ARGV[i + 1]) == 1 then failed = failed + 1 end
end
local result = {
  redis.call('HINCRBY', KEYS[1], 'written', written),
  redis.call('HINCRBY', KEYS[1], 'failed', failed),
  redis.call('HINCRBY', KEYS[1], 'attempts', ARGV[1]),
}
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return result
`

/*
 * KEYS[1] batch hash, KEYS[2] operations, KEYS[3] confirmed bitmap, KEYS[4] errors hash, KEYS[5] idempotency record
 * ARGV[1] status, ARGV[2] now (ISO), ARGV[3] error, ARGV[4] retention ms
 * 'processing' starts a run: returns the status before, and leaves a completed batch alone.
 * 'completed' / 'failed' set completedAt; 'completed' also drops the operations. False when the batch is gone.
 */
export const SETTLE_SCRIPT = `
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
`

/* KEYS[1] idempotency record; ARGV[1] batch id. Deletes the record only while it still names this batch. */
export const DISCARD_IDEMPOTENCY_SCRIPT = `
local record = redis.call('GET', KEYS[1])
if record and string.sub(record, -#ARGV[1] - 1) == ' ' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    dcBatchCreate(hash: string, ops: string, idem: string, fingerprint: string, id: string, ttlMs: number, blob: Buffer, ...fields: string[]): Result<[string, string], Context>
    dcBatchRecord(hash: string, ops: string, done: string, errs: string, ...args: Array<string | number>): Result<[number, number, number] | null, Context>
    dcBatchSettle(hash: string, ops: string, done: string, errs: string, idem: string, status: string, now: string, error: string, ttlMs: number): Result<string | null, Context>
    dcBatchDiscardIdempotency(idem: string, id: string): Result<number, Context>
  }
}
