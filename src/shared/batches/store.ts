import type { Redis } from 'ioredis'
import { DEFAULT_TENANT } from '../access.ts'
import { errors } from '../errors.ts'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'
import { newBatchId, tableOfBatchId } from './batch-id.ts'
import type { BatchFormat, OperationProblem } from './operations.ts'

/**
 * queued: waiting for a worker. processing: a worker is writing it. retrying: a run stopped on a
 * transient failure and the job waits for its next attempt. completed: every operation was written
 * or recorded as failed. failed: the job ran out of attempts (retry it from Bull Board to resume).
 */
export type BatchStatus = 'queued' | 'processing' | 'retrying' | 'completed' | 'failed'

export interface NewBatch {
  table: string
  format: BatchFormat
  total: number
  keyNames: readonly string[]
  /** gzip of encodeOperations(). */
  operations: Buffer
  /** batchFingerprint() of the content, compared on an Idempotency-Key replay. */
  fingerprint: string
  /** idempotencyDigest() when the request carried an Idempotency-Key. */
  idempotency?: string
  /** The tenant that sent it (the default tenant when absent). */
  tenant?: string
}

export interface BatchView {
  id: string
  table: string
  /** The tenant that sent it; batches stored before tenants existed belong to the default tenant. */
  tenant: string
  status: BatchStatus
  format: BatchFormat
  total: number
  written: number
  failed: number
  /** BatchWriteItem calls made so far, retries included. */
  attempts: number
  /** Operations DynamoDB refused, by index (the first ones; `failed` counts them all). */
  errors: OperationProblem[]
  /** Why the last run stopped, for retrying and failed batches. */
  error: string | null
  createdAt: string
  startedAt: string | null
  completedAt: string | null
}

/** What a worker needs to (re)start a batch. */
export interface StoredBatch {
  id: string
  table: string
  status: BatchStatus
  total: number
  written: number
  keyNames: string[]
  /** gzip of the operations JSON; null once the batch completed. */
  operations: Buffer | null
  /** True when operation `index` is confirmed written. */
  isConfirmed(index: number): boolean
  /** Operations recorded as refused by DynamoDB. */
  failedIndexes: ReadonlySet<number>
}

export interface Progress {
  written: number
  failed: number
  attempts: number
}

/** The Redis side of batch writes; every key of a batch shares its table's hash tag. */
export interface BatchStore {
  /**
   * Stores a new batch; for an Idempotency-Key already used with the same content, names the batch it
   * made instead. Throws DC_ERR_IDEMPOTENCY_CONFLICT when the key was used with other content.
   */
  create(batch: NewBatch): Promise<{ id: string; created: boolean; status: BatchStatus }>
  /** Removes a batch that could not be queued, with its idempotency record. */
  discard(id: string): Promise<void>
  /** The status view; undefined when the id is unknown or the batch expired. */
  view(id: string, maxErrors?: number): Promise<BatchView | undefined>
  /** Meta, operations and progress for a worker run; undefined when the batch is gone. */
  load(id: string): Promise<StoredBatch | undefined>
  /** Marks a run started (processing) and returns the status before; undefined when the batch is gone. */
  start(id: string): Promise<BatchStatus | undefined>
  /**
   * Saves one BatchWriteItem call atomically: confirmed operations (each counted once, however often it is
   * confirmed), refused operations with their reasons, and the call itself. Undefined when the batch is gone.
   */
  record(id: string, call: { confirmed: readonly number[]; failed?: readonly OperationProblem[]; calls: number }): Promise<Progress | undefined>
  /** Sets the status; completed and failed start the JOB_RETENTION_DAYS countdown, completed drops the operations. */
  settle(id: string, status: 'completed' | 'failed' | 'retrying', error?: string): Promise<void>
}

export interface BatchStoreOptions {
  redis: Redis
  keys: RedisKeys
  /** JOB_RETENTION_DAYS: how long a finished batch (and an idle unfinished one) is kept. */
  retentionDays: number
  now?: () => number
}

export function createBatchStore({ redis, keys, retentionDays, now = Date.now }: BatchStoreOptions): BatchStore {
  defineScripts(redis)
  const retentionMs = retentionDays * 24 * 3600 * 1000
  const iso = () => new Date(now()).toISOString()

  /** The batch's keys; undefined for an id no batch can have. */
  function keysOf(id: string) {
    const table = tableOfBatchId(id)
    if (!table) return undefined
    return {
      table,
      hash: keys.batch(table, id),
      ops: keys.batch(table, id, 'ops'),
      done: keys.batch(table, id, 'done'),
      errors: keys.batch(table, id, 'errors'),
    }
  }

  async function settle(id: string, status: BatchStatus, error = ''): Promise<BatchStatus | undefined> {
    const k = keysOf(id)
    if (!k) return undefined
    const idem = (await redis.hget(k.hash, 'idem')) || k.hash
    const before = await redis.dcBatchSettle(k.hash, k.ops, k.done, k.errors, idem, status, iso(), error, retentionMs)
    return (before ?? undefined) as BatchStatus | undefined
  }

  return {
    async create(batch) {
      const id = newBatchId(batch.table)
      const k = keysOf(id)!
      const idem = batch.idempotency ? keys.idempotency(batch.table, batch.idempotency) : ''
      const fields = {
        id,
        table: batch.table,
        tenant: batch.tenant ?? DEFAULT_TENANT,
        status: 'queued',
        format: batch.format,
        total: String(batch.total),
        written: '0',
        failed: '0',
        attempts: '0',
        runs: '0',
        keys: JSON.stringify(batch.keyNames),
        idem,
        error: '',
        createdAt: iso(),
        startedAt: '',
        completedAt: '',
      }
      const [outcome, existing] = await redis.dcBatchCreate(
        k.hash,
        k.ops,
        idem || k.hash,
        batch.idempotency ? batch.fingerprint : '',
        id,
        retentionMs,
        batch.operations,
        ...Object.entries(fields).flat(),
      )
      if (outcome === 'conflict') throw new errors.DC_ERR_IDEMPOTENCY_CONFLICT()
      if (outcome === 'created') return { id, created: true, status: 'queued' }
      const status = (await redis.hget(keys.batch(batch.table, existing), 'status')) as BatchStatus | null
      return { id: existing, created: false, status: status ?? 'completed' }
    },

    async discard(id) {
      const k = keysOf(id)
      if (!k) return
      const idem = await redis.hget(k.hash, 'idem')
      if (idem) await redis.dcBatchDiscardIdempotency(idem, id)
      await redis.unlink(k.hash, k.ops, k.done, k.errors)
    },

    async view(id, maxErrors = 100) {
      const k = keysOf(id)
      if (!k) return undefined
      const [meta, failures] = await Promise.all([redis.hgetall(k.hash), redis.hgetall(k.errors)])
      if (!meta.status) return undefined
      const listed = Object.entries(failures)
        .map(([index, reason]) => ({ index: Number(index), reason }))
        .sort((a, b) => a.index - b.index)
        .slice(0, maxErrors)
      return {
        id,
        table: k.table,
        tenant: meta.tenant || DEFAULT_TENANT,
        status: meta.status as BatchStatus,
        format: (meta.format ?? 'typed') as BatchFormat,
        total: Number(meta.total ?? 0),
        written: Number(meta.written ?? 0),
        failed: Number(meta.failed ?? 0),
        attempts: Number(meta.attempts ?? 0),
        errors: listed,
        error: meta.error || null,
        createdAt: meta.createdAt ?? '',
        startedAt: meta.startedAt || null,
        completedAt: meta.completedAt || null,
      }
    },

    async load(id) {
      const k = keysOf(id)
      if (!k) return undefined
      const [[, meta], [, ops], [, done], [, failedFields]] = (await redis
        .multi()
        .hgetall(k.hash)
        .getBuffer(k.ops)
        .getBuffer(k.done)
        .hkeys(k.errors)
        .exec()) as [[null, Record<string, string>], [null, Buffer | null], [null, Buffer | null], [null, string[]]]
      if (!meta.status) return undefined
      const bitmap = done ?? Buffer.alloc(0)
      return {
        id,
        table: k.table,
        status: meta.status as BatchStatus,
        total: Number(meta.total),
        written: Number(meta.written),
        keyNames: JSON.parse(meta.keys ?? '[]') as string[],
        operations: ops,
        // SETBIT numbers bits from the most significant bit of the first byte.
        isConfirmed: (index) => ((bitmap[index >> 3] ?? 0) & (0x80 >> (index & 7))) !== 0,
        failedIndexes: new Set(failedFields.map(Number)),
      }
    },

    start: (id) => settle(id, 'processing'),

    async record(id, { confirmed, failed = [], calls }) {
      const k = keysOf(id)
      if (!k) return undefined
      const args: Array<string | number> = [calls, retentionMs, confirmed.length, ...confirmed]
      for (const f of failed) args.push(f.index, f.reason)
      const result = await redis.dcBatchRecord(k.hash, k.ops, k.done, k.errors, ...args)
      return result ? { written: result[0], failed: result[1], attempts: result[2] } : undefined
    },

    async settle(id, status, error) {
      await settle(id, status, error)
    },
  }
}
