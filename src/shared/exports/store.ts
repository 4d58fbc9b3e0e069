import type { Redis, Result } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'
import {
  type Checkpoint,
  type ExportEvent,
  type ExportEventData,
  type ExportEventType,
  type ExportRecord,
  type ExportStatus,
  recordFromHash,
  recordToHash,
} from './model.ts'

/**
 * Exports in Redis: the record hash, per-segment checkpoints and owners, the progress event stream
 * and the history index, all under one hash tag so each state change is one atomic script that also
 * appends its event. Knows nothing of HTTP, BullMQ or DynamoDB.
 */
export interface ExportStore {
  /** Stores a new queued export, indexes it in the history and appends its first event. */
  create(record: ExportRecord): Promise<void>
  get(id: string): Promise<ExportRecord | undefined>
  exists(id: string): Promise<boolean>
  /** History newest first; `before` is the `next` of the previous page; `where` keeps only matching records (a tenant's). */
  list(opts: { limit: number; status?: ExportStatus; before?: string; where?: (record: ExportRecord) => boolean }): Promise<{ records: ExportRecord[]; next?: string }>
  /**
   * Makes `owner` the segment's only writer (a run that still thinks it owns it gets 'fenced' on its
   * next commit) and starts a queued export. Returns the export's status and the segment's checkpoint.
   */
  claimSegment(id: string, segment: number, owner: string): Promise<{ status: ExportStatus | 'missing'; checkpoint?: Checkpoint }>
  /**
   * Saves a segment's checkpoint after a page, adds its rows to the export's counters and raises the
   * progress. 'ok', or why the segment must stop: 'fenced', 'missing' or the export's status.
   */
  commitPage(id: string, segment: number, owner: string, checkpoint: Checkpoint, fraction: number, segments: number): Promise<'ok' | 'fenced' | 'missing' | ExportStatus>
  /** True while `owner` is still the segment's writer (checked before a page is written to storage). */
  ownsSegment(id: string, segment: number, owner: string): Promise<boolean>
  /** Raises a processing export's progress (never lowers it); returns the export's status. */
  raiseProgress(id: string, progress: number): Promise<ExportStatus | 'missing'>
  /** Every segment's checkpoint (undefined where a segment has not committed a page). */
  checkpoints(id: string, segments: number): Promise<Array<Checkpoint | undefined>>
  /**
   * Moves a live (queued or processing) export to a terminal status and appends the event; a
   * finished export never changes. Returns the status before and whether this call changed it.
   */
  finish(
    id: string,
    status: 'completed' | 'failed' | 'cancelled',
    details?: { error?: string; file?: string; bytes?: number },
  ): Promise<{ before: ExportStatus | 'missing'; changed: boolean }>
  /** Events after `afterId` (all when absent), oldest first. */
  events(id: string, afterId?: string): Promise<ExportEvent[]>
  /** The record and the id of its latest event, read together. */
  snapshot(id: string): Promise<{ record?: ExportRecord; lastEventId?: string }>
  /** Exports created before `createdBefore` (ms), oldest first, in batches, from the history index. */
  createdBefore(createdBefore: number, batch?: number): AsyncGenerator<Array<{ id: string; createdAt: number }>>
  /** Deletes an export's record, checkpoints, events and history entry (`createdAt` when the record is gone). */
  remove(id: string, createdAt?: number): Promise<void>
  /** Marks an email of an export as sent (with its message id); false if it already was. */
  /**
   * Claims the send of an email before SES is called: 'claimed', 'gone' when the export was removed,
   * or the claim an earlier attempt left (it died during the send: whether SES took it is unknown).
   */
  claimMail(id: string, template: string, claim: string): Promise<'claimed' | 'gone' | string>
  /** Gives the claim back when SES answered with an error, so a retry may send. */
  releaseMail(id: string, template: string): Promise<void>
  markMailSent(id: string, template: string, messageId: string): Promise<boolean>
  mailSent(id: string, template: string): Promise<boolean>
  /** The stream key of an export's events (for a blocking reader). */
  eventsKey(id: string): string
}

/*
 * KEYS[1] record hash, KEYS[2] segments hash, KEYS[3] events stream
 * ARGV[1] segment, ARGV[2] owner token, ARGV[3] now (ms), ARGV[4] stream max length
 * Starts a queued export (processing, startedAt, event) and records the owner of the segment while the
 * export is processing. Returns { status, checkpoint JSON or false }; { '' } when the export is gone.
 */
const CLAIM_SCRIPT = `
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
`

/*
 * KEYS[1] record hash, KEYS[2] segments hash, KEYS[3] events stream
 * ARGV[1] segment, ARGV[2] owner token, ARGV[3] checkpoint JSON, ARGV[4] the segment's rows so far,
 * ARGV[5] its scanned items so far, ARGV[6] its fraction done (0..1), ARGV[7] number of segments,
 * ARGV[8] stream max length
 * Saves the checkpoint if the export is processing and the caller still owns the segment; moves the
 * export's counters by the segment's change; raises progress over the scan phase (0-95) from
 * DescribeTable's count when known (never below the share of finished segments), else from the
 * segments' fractions; appends a progress event when it rose.
 * Returns 'ok', 'fenced', the export's status when not processing, or '' when it is gone.
 */
const COMMIT_SCRIPT = `
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
`

/*
 * KEYS[1] record hash, KEYS[2] events stream
 * ARGV[1] progress, ARGV[2] stream max length
 * Raises a processing export's progress and appends a progress event; returns the status ('' if gone).
 */
const RAISE_SCRIPT = `
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
`

/*
 * KEYS[1] record hash, KEYS[2] events stream
 * ARGV[1] target status (completed, failed, cancelled), ARGV[2] now (ms), ARGV[3] error ('' for none),
 * ARGV[4] file name ('' for none), ARGV[5] file size in bytes, ARGV[6] stream max length
 * Moves a queued or processing export to the target status (completed only from processing), sets
 * completedAt (and progress 100, file and size when completed, error when given), appends the event.
 * Returns { status before ('' if gone), 1 if it changed else 0 }.
 */
const FINISH_SCRIPT = `
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
`

/*
 * KEYS[1] record hash; ARGV[1] the claim field, ARGV[2] the claim.
 * Sets the claim unless there is one (returns it) or the export is gone (0); 1 when claimed.
 */
const CLAIM_MAIL_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return held end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    dcExportClaimMail(record: string, field: string, claim: string): Result<number | string, Context>
    dcExportClaim(record: string, segs: string, events: string, segment: number, owner: string, now: number, maxLen: number): Result<[string, string | null], Context>
    dcExportCommit(
      record: string, segs: string, events: string, segment: number, owner: string, checkpoint: string,
      rows: number, scanned: number, fraction: number, segments: number, maxLen: number,
    ): Result<string, Context>
    dcExportRaise(record: string, events: string, progress: number, maxLen: number): Result<string, Context>
    dcExportFinish(record: string, events: string, status: string, now: number, error: string, file: string, bytes: number, maxLen: number): Result<[string, number], Context>
  }
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/
/** True for a Redis stream id (`<ms>-<seq>`), the only Last-Event-ID we accept. */
export const isStreamId = (id: string) => STREAM_ID.test(id)

/** Orders two stream ids. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1
}

/** A stream entry's fields as XRANGE / XREAD return them, parsed into an event. */
export function parseEvent(id: string, fields: string[]): ExportEvent {
  const map: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!
  return { id, type: map.type as ExportEventType, data: JSON.parse(map.data ?? '{}') as ExportEventData }
}

const historyMember = (createdAt: number, id: string) => `${String(createdAt).padStart(15, '0')}:${id}`

export interface ExportStoreOptions {
  redis: Redis
  keys: RedisKeys
  /** Events kept per export (approximately); progress events are at most ~100 per export anyway. */
  maxEvents?: number
}

const defined = new WeakSet<Redis>()

export function createExportStore({ redis, keys, maxEvents = 1000 }: ExportStoreOptions): ExportStore {
  if (!defined.has(redis)) {
    redis.defineCommand('dcExportClaim', { numberOfKeys: 3, lua: CLAIM_SCRIPT })
    redis.defineCommand('dcExportClaimMail', { numberOfKeys: 1, lua: CLAIM_MAIL_SCRIPT })
    redis.defineCommand('dcExportCommit', { numberOfKeys: 3, lua: COMMIT_SCRIPT })
    redis.defineCommand('dcExportRaise', { numberOfKeys: 2, lua: RAISE_SCRIPT })
    redis.defineCommand('dcExportFinish', { numberOfKeys: 2, lua: FINISH_SCRIPT })
    defined.add(redis)
  }
  const rec = (id: string) => keys.exportRecord(id)
  const segs = (id: string) => keys.exportRecord(id, 'seg')
  const evs = (id: string) => keys.exportRecord(id, 'events')

  async function get(id: string) {
    return recordFromHash(await redis.hgetall(rec(id)))
  }

  return {
    eventsKey: evs,
    get,

    async create(record) {
      const data: ExportEventData = { status: record.status, progress: record.progress, processedItems: record.processedItems }
      await redis
        .multi()
        .hset(rec(record.id), recordToHash(record))
        .zadd(keys.exportHistory, 0, historyMember(record.createdAt, record.id))
        .xadd(evs(record.id), 'MAXLEN', '~', maxEvents, '*', 'type', 'progress', 'data', JSON.stringify(data))
        .exec()
    },

    async exists(id) {
      return (await redis.exists(rec(id))) === 1
    },

    async list({ limit, status, before, where }) {
      const records: ExportRecord[] = []
      let max = before ? `(${before}` : '+'
      const batch = Math.max(limit * 2, 100)
      for (;;) {
        const members = await redis.zrevrangebylex(keys.exportHistory, max, '-', 'LIMIT', 0, batch)
        if (members.length === 0) return { records }
        const pipeline = redis.pipeline()
        for (const m of members) pipeline.hgetall(rec(m.slice(m.indexOf(':') + 1)))
        const hashes = (await pipeline.exec()) ?? []
        for (const [i, member] of members.entries()) {
          const record = recordFromHash((hashes[i]?.[1] ?? {}) as Record<string, string>)
          if (!record || (status && record.status !== status) || (where && !where(record))) continue
          records.push(record)
          if (records.length === limit) {
            // Only promise a next page when one may exist.
            const more = i < members.length - 1 || members.length === batch
            return more ? { records, next: member } : { records }
          }
        }
        if (members.length < batch) return { records }
        max = `(${members[members.length - 1]}`
      }
    },

    async claimSegment(id, segment, owner) {
      const [status, checkpoint] = await redis.dcExportClaim(rec(id), segs(id), evs(id), segment, owner, Date.now(), maxEvents)
      if (status === '') return { status: 'missing' }
      return {
        status: status as ExportStatus,
        ...(checkpoint ? { checkpoint: JSON.parse(checkpoint) as Checkpoint } : {}),
      }
    },

    async commitPage(id, segment, owner, checkpoint, fraction, segments) {
      const result = await redis.dcExportCommit(
        rec(id), segs(id), evs(id), segment, owner, JSON.stringify(checkpoint),
        checkpoint.rows, checkpoint.scanned, fraction, segments, maxEvents,
      )
      return result === '' ? 'missing' : (result as 'ok' | 'fenced' | ExportStatus)
    },

    async ownsSegment(id, segment, owner) {
      return (await redis.hget(segs(id), `own:${segment}`)) === owner
    },

    async raiseProgress(id, progress) {
      const status = await redis.dcExportRaise(rec(id), evs(id), progress, maxEvents)
      return status === '' ? 'missing' : (status as ExportStatus)
    },

    async checkpoints(id, segments) {
      if (segments === 0) return []
      const fields = Array.from({ length: segments }, (_, i) => `cp:${i}`)
      const values = await redis.hmget(segs(id), ...fields)
      return values.map((v) => (v ? (JSON.parse(v) as Checkpoint) : undefined))
    },

    async finish(id, status, details = {}) {
      const [before, changed] = await redis.dcExportFinish(
        rec(id), evs(id), status, Date.now(), details.error ?? '', details.file ?? '', details.bytes ?? 0, maxEvents,
      )
      // Counted apart from the script (metrics only): exactly once per export, by the call that finished it.
      if (changed === 1) await redis.hincrby(keys.exportOutcomes, status, 1).catch(() => {})
      return { before: before === '' ? 'missing' : (before as ExportStatus), changed: changed === 1 }
    },

    async events(id, afterId) {
      const entries = await redis.xrange(evs(id), afterId ? `(${afterId}` : '-', '+')
      return entries.map(([entryId, fields]) => parseEvent(entryId, fields))
    },

    async snapshot(id) {
      const results = (await redis.multi().hgetall(rec(id)).xrevrange(evs(id), '+', '-', 'COUNT', 1).exec()) ?? []
      const [hashReply, lastReply] = results
      if (hashReply?.[0]) throw hashReply[0]
      const record = recordFromHash((hashReply?.[1] ?? {}) as Record<string, string>)
      const last = (lastReply?.[1] as Array<[string, string[]]> | undefined)?.[0]?.[0]
      return { ...(record ? { record } : {}), ...(last ? { lastEventId: last } : {}) }
    },

    async *createdBefore(createdBefore, batch = 200) {
      const max = `(${String(createdBefore).padStart(15, '0')}:`
      let min = '-'
      for (;;) {
        const members = await redis.zrangebylex(keys.exportHistory, min, max, 'LIMIT', 0, batch)
        if (members.length === 0) return
        yield members.map((m) => ({ id: m.slice(m.indexOf(':') + 1), createdAt: Number(m.slice(0, m.indexOf(':'))) }))
        if (members.length < batch) return
        min = `(${members[members.length - 1]}`
      }
    },

    async remove(id, createdAt) {
      const at = createdAt ?? Number(await redis.hget(rec(id), 'createdAt'))
      const tx = redis.multi().del(rec(id), segs(id), evs(id))
      if (Number.isFinite(at) && at > 0) tx.zrem(keys.exportHistory, historyMember(at, id))
      await tx.exec()
    },

    async claimMail(id, template, claim) {
      const out = await redis.dcExportClaimMail(rec(id), `mail:${template}:sending`, claim)
      return out === 1 ? 'claimed' : out === 0 ? 'gone' : String(out)
    },

    async releaseMail(id, template) {
      await redis.hdel(rec(id), `mail:${template}:sending`)
    },

    async markMailSent(id, template, messageId) {
      return (await redis.hsetnx(rec(id), `mail:${template}`, messageId)) === 1
    },

    async mailSent(id, template) {
      return (await redis.hexists(rec(id), `mail:${template}`)) === 1
    },
  }
}
