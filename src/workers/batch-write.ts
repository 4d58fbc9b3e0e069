import { promisify } from 'node:util'
import { gunzip as gunzipCallback } from 'node:zlib'
import { BatchWriteItemCommand, type BatchWriteItemCommandOutput } from '@aws-sdk/client-dynamodb'
import { type Job, UnrecoverableError } from 'bullmq'
import { tableOfBatchId } from '../shared/batches/batch-id.ts'
import {
  type BatchStatus,
  createBatchStore,
  DEFAULT_RETRY,
  decodeOperations,
  keyString,
  type OperationProblem,
  type Progress,
  type RetryPolicy,
  retryUnprocessed,
  toWriteRequest,
  writeRequestAttributes,
} from '../shared/batches/index.ts'
import { writtenChange } from '../shared/cache/coherence.ts'
import { codeOf, isBudgetExhausted } from '../shared/error-classes.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { safeReason } from '../shared/safe-message.ts'
import { failOrRetry } from './attempts.ts'
import { deferJob } from './defer.ts'
import type { WorkerDeps } from './deps.ts'
import { createJobChecks } from './job-checks.ts'

const gunzip = promisify(gunzipCallback)

export interface BatchWriteOptions {
  /** BatchWriteItem calls in flight at once for one batch. */
  parallelCalls: number
  /** Backoff for UnprocessedItems, throttling and 5xx within one run. */
  retry: RetryPolicy
  /** While a batch progresses, its table's cache is invalidated at most this often. */
  invalidateEveryMs: number
}

export const BATCH_WRITE_DEFAULTS: BatchWriteOptions = { parallelCalls: 4, retry: DEFAULT_RETRY, invalidateEveryMs: 1000 }

/** A call that waited for write budget when the worker began to stop: it is handed back unsent. */
class BudgetWaitStopped extends Error {
  override name = 'BudgetWaitStopped'
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** DynamoDB's limits for one BatchWriteItem: 25 requests and 16 MB, of which 1 MB is left for the envelope. */
const MAX_OPS_PER_CALL = 25
const MAX_CALL_BYTES = 15 * 1024 * 1024

export interface BatchWriteResult {
  id: string
  status: BatchStatus
  total: number
  written: number
  failed: number
  attempts: number
}

/** A run that stopped with operations left: transient, so BullMQ retries the job and it resumes. */
class BatchIncompleteError extends Error {
  override name = 'BatchIncompleteError'
}

/** Operation indexes in calls of at most 25 operations and MAX_CALL_BYTES on the wire. */
function groupForCalls(indexes: readonly number[], bytesOf: (index: number) => number): number[][] {
  const groups: number[][] = []
  let group: number[] = []
  let bytes = 0
  for (const i of indexes) {
    const size = bytesOf(i)
    if (group.length === MAX_OPS_PER_CALL || (group.length > 0 && bytes + size > MAX_CALL_BYTES)) {
      groups.push(group)
      group = []
      bytes = 0
    }
    group.push(i)
    bytes += size
  }
  if (group.length > 0) groups.push(group)
  return groups
}

/**
 * Writes one batch with BatchWriteItem, `parallelCalls` calls at a time. Every call's outcome is saved
 * in Redis before the next step (which operations are confirmed, which DynamoDB refused, how many calls),
 * so a re-run (next attempt, stalled job, retry from Bull Board) sends only what is not confirmed yet.
 * Requests DynamoDB leaves unprocessed, and calls that are throttled or fail, are retried with backoff;
 * a call refused as invalid is split until the refused operation is alone, then recorded as failed.
 * The cache entries its writes change are invalidated (items, partitions, indexes, scan pages:
 * docs/coherence.md) as the batch progresses and before it is marked completed.
 */
export default function createBatchWriteProcessor(deps: WorkerDeps, options: Partial<BatchWriteOptions> = {}) {
  const { redis, keys, gateway, queues, logger, config, cache } = deps
  const opts = { ...BATCH_WRITE_DEFAULTS, ...options }
  const store = createBatchStore({ redis, keys, retentionDays: config.JOB_RETENTION_DAYS })
  const checks = createJobChecks(config)

  return async function batchWrite(job: Job<QueuePayload<'batch-write'>>, token?: string, signal?: AbortSignal): Promise<BatchWriteResult> {
    const { id, table } = job.data
    // The API queues a batch as job `id` for the table its id names: a job added by hand that points
    // a batch at another table (or is not the batch's own job) writes nothing.
    checks.require(typeof id === 'string' && job.id === id, job, 'the job id is not its batch id')
    checks.require(typeof table === 'string' && tableOfBatchId(id) === table, job, "the table is not the batch's table")
    const batch = await store.load(id)
    if (!batch) throw new UnrecoverableError(`Batch ${id} no longer exists (expired or removed)`)
    checks.require(batch.table === table, job, "the table is not the batch's table")
    const summary = async (): Promise<BatchWriteResult> => {
      const view = (await store.view(id, 0))!
      return { id, status: view.status, total: view.total, written: view.written, failed: view.failed, attempts: view.attempts }
    }
    // A completed batch (say, its job retried from Bull Board after it finished) is not written again.
    if (batch.status === 'completed' || !batch.operations) return summary()
    if (!checks.tableAllowed(table)) {
      await store.settle(id, 'failed', 'The table is not allowed (TABLES_ALLOW / TABLES_DENY)')
      checks.refuse(job, 'the table is not allowed (TABLES_ALLOW / TABLES_DENY)')
    }
    const before = await store.start(id)
    if (before === undefined) throw new UnrecoverableError(`Batch ${id} no longer exists (expired or removed)`)
    if (before === 'completed') return summary()
    let operations: ReturnType<typeof decodeOperations>
    try {
      operations = decodeOperations((await gunzip(batch.operations)).toString())
    } catch (err) {
      await store.settle(id, 'failed', `The stored operations cannot be read: ${safeReason(err)}`)
      throw new UnrecoverableError(`Batch ${id}: the stored operations cannot be read`)
    }
    const names = batch.keyNames
    const indexByKey = new Map(operations.map((op, i) => [keyString(names, op.attributes), i]))
    const pending = operations.map((_, i) => i).filter((i) => !batch.isConfirmed(i) && !batch.failedIndexes.has(i))
    const queue = groupForCalls(pending, (i) => operations[i]!.wireBytes)
    logger.info({ msg: 'batch.run', id, table, total: operations.length, pending: pending.length, attempt: job.attemptsMade + 1 })

    let progress: Progress = { written: batch.written, failed: batch.failedIndexes.size, attempts: 0 }
    let unannounced = false
    // Confirmed writes whose invalidation is not yet made; a re-run announces those of earlier runs again.
    const toAnnounce = new Set(operations.map((_, i) => i).filter((i) => batch.isConfirmed(i)))
    let lastBump = 0
    let lastReport = 0

    /** Invalidates what the confirmed writes changed, so cached pages, queries and items of them miss and show the writes. */
    async function invalidate(force: boolean) {
      if (!force && (!unannounced || Date.now() - lastBump < opts.invalidateEveryMs)) return
      unannounced = false
      lastBump = Date.now()
      const written = [...toAnnounce]
      toAnnounce.clear()
      try {
        await cache.applyChanges(
          table,
          written.map((i) => writtenChange(operations[i]!, names)),
        )
      } catch (err) {
        for (const i of written) toAnnounce.add(i)
        throw err
      }
    }

    async function save(call: { confirmed: number[]; failed?: OperationProblem[]; calls: number }) {
      const saved = await store.record(id, call)
      if (!saved) throw new UnrecoverableError(`Batch ${id} was removed while it was being written`)
      progress = saved
      if (call.confirmed.length > 0) unannounced = true
      for (const i of call.confirmed) toAnnounce.add(i)
      await invalidate(false)
      if (Date.now() - lastReport > 500) {
        lastReport = Date.now()
        await job.updateProgress({ total: operations.length, ...saved })
      }
    }

    /**
     * One BatchWriteItem call. While the table's write budget (DYNAMO_WRITE_BUDGET) is used up for this
     * second it waits for the next one: not a failed call, no attempt spent. A stopping worker stops waiting.
     */
    async function sendWithinBudget(indexes: number[]): Promise<BatchWriteItemCommandOutput> {
      const requests = indexes.map((i) => toWriteRequest(operations[i]!))
      for (;;) {
        try {
          return await gateway.send<BatchWriteItemCommandOutput>(table, new BatchWriteItemCommand({ RequestItems: { [table]: requests } }))
        } catch (err) {
          if (!isBudgetExhausted(err)) throw err
          if (signal?.aborted) throw new BudgetWaitStopped()
          await sleep(1000 - (Date.now() % 1000) + Math.random() * 50)
        }
      }
    }

    /** One call of up to 25 operations, with its unprocessed part retried; returns split groups to queue. */
    async function writeGroup(group: number[]): Promise<number[][]> {
      let sent = group
      try {
        const outcome = await retryUnprocessed(
          group,
          async (indexes) => {
            sent = indexes
            let out: BatchWriteItemCommandOutput
            try {
              out = await sendWithinBudget(indexes)
            } catch (err) {
              if (err instanceof BudgetWaitStopped) throw err
              await save({ confirmed: [], calls: 1 })
              throw err
            }
            const left = new Set<number>()
            for (const request of out.UnprocessedItems?.[table] ?? []) {
              const attributes = writeRequestAttributes(request)
              const index = attributes ? indexByKey.get(keyString(names, attributes)) : undefined
              if (index === undefined) throw new Error('DynamoDB handed back an unprocessed request this batch did not send')
              left.add(index)
            }
            await save({ confirmed: indexes.filter((i) => !left.has(i)), calls: 1 })
            return indexes.filter((i) => left.has(i))
          },
          opts.retry,
        )
        if (outcome.remaining.length > 0) {
          const why = outcome.lastError ? `: ${safeReason(outcome.lastError)}` : ' (left unprocessed)'
          throw new BatchIncompleteError(`${outcome.remaining.length} operations not written after ${outcome.calls} calls${why}`)
        }
        return []
      } catch (err) {
        // Nothing of it was sent: back to the queue, which the stopping worker hands back with the job.
        if (err instanceof BudgetWaitStopped) return [sent]
        if (codeOf(err) === 'DC_ERR_DYNAMO_REJECTED') {
          // DynamoDB refuses the whole call for one bad request: halve until the bad one is alone.
          if (sent.length === 1) {
            await save({ confirmed: [], failed: [{ index: sent[0]!, reason: safeReason(err) }], calls: 0 })
            return []
          }
          const half = Math.ceil(sent.length / 2)
          return [sent.slice(0, half), sent.slice(half)]
        }
        if (codeOf(err) === 'DC_ERR_TABLE_NOT_FOUND') throw new UnrecoverableError(`Table '${table}' no longer exists`)
        throw err
      }
    }

    let fatal: unknown
    async function lane() {
      // A stopping worker (abort signal) starts no new call; the calls in flight finish and are saved.
      while (fatal === undefined && !signal?.aborted) {
        const group = queue.shift()
        if (!group) return
        try {
          queue.unshift(...(await writeGroup(group)))
        } catch (err) {
          fatal ??= err
        }
      }
    }

    try {
      await Promise.all(Array.from({ length: Math.max(1, opts.parallelCalls) }, lane))
      if (fatal !== undefined) throw fatal
    } catch (err) {
      const { final, error } = failOrRetry(job, err)
      if (progress.written > 0) await invalidate(true)
      // The record is shown to API clients: the driver's own text stays in the log line below.
      await store.settle(id, final ? 'failed' : 'retrying', safeReason(err))
      logger.warn({ msg: 'batch.stopped', id, table, final, ...progress, err: (err as Error).message })
      throw error
    }

    if (queue.length > 0) {
      // The worker is shutting down: hand the batch back now, not after the whole batch. Every call made is
      // saved, so the next run (any worker) sends only what is not confirmed yet.
      if (progress.written > 0) await invalidate(true)
      await store.settle(id, 'retrying', 'the worker that was writing it stopped; the next run resumes it')
      logger.info({ msg: 'batch.released', id, table, ...progress, callsLeft: queue.length })
      throw await deferJob(job, token, 0)
    }

    // Invalidate before the status says completed, so a client that saw "completed" reads the writes.
    if (progress.written > 0) {
      await invalidate(true)
      await queues
        .enqueue('cache-maintenance', { kind: 'purge', table }, { deduplication: { id: `batch-purge:${table}` } })
        .catch((err) => logger.warn({ msg: 'batch.purge.not-queued', table, err: (err as Error).message }))
    }
    await store.settle(id, 'completed')
    const result = await summary()
    logger.info({ msg: 'batch.completed', ...result, table })
    return result
  }
}
