import type { Redis } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'
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
  list(opts: {
    limit: number
    status?: ExportStatus
    before?: string
    where?: (record: ExportRecord) => boolean
  }): Promise<{ records: ExportRecord[]; next?: string }>
  /**
   * Makes `owner` the segment's only writer (a run that still thinks it owns it gets 'fenced' on its
   * next commit) and starts a queued export. Returns the export's status and the segment's checkpoint.
   */
  claimSegment(id: string, segment: number, owner: string): Promise<{ status: ExportStatus | 'missing'; checkpoint?: Checkpoint }>
  /**
   * Saves a segment's checkpoint after a page, adds its rows to the export's counters and raises the
   * progress. 'ok', or why the segment must stop: 'fenced', 'missing' or the export's status.
   */
  commitPage(
    id: string,
    segment: number,
    owner: string,
    checkpoint: Checkpoint,
    fraction: number,
    segments: number,
  ): Promise<'ok' | 'fenced' | 'missing' | ExportStatus>
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

export function createExportStore({ redis, keys, maxEvents = 1000 }: ExportStoreOptions): ExportStore {
  defineScripts(redis)
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
        rec(id),
        segs(id),
        evs(id),
        segment,
        owner,
        JSON.stringify(checkpoint),
        checkpoint.rows,
        checkpoint.scanned,
        fraction,
        segments,
        maxEvents,
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
        rec(id),
        evs(id),
        status,
        Date.now(),
        details.error ?? '',
        details.file ?? '',
        details.bytes ?? 0,
        maxEvents,
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
