import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { QueryCommand, type QueryCommandInput, ScanCommand, type ScanCommandInput, type ScanCommandOutput } from '@aws-sdk/client-dynamodb'
import { DelayedError, type Job } from 'bullmq'
import { buildQuery, buildScanFilter } from '../shared/dynamo/query-builder.ts'
import { isBudgetExhausted } from '../shared/error-classes.ts'
import {
  type Checkpoint,
  decodeStartKey,
  type ExportQuery,
  encodeStartKey,
  exportProjection,
  FRESH_CHECKPOINT,
  fieldsOf,
  PartLostError,
  renderPage,
} from '../shared/exports/index.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { safeReason } from '../shared/safe-message.ts'
import { failOrRetry } from './attempts.ts'
import { deferJob } from './defer.ts'
import type { WorkerDeps } from './deps.ts'
import { exportServices } from './export-services.ts'
import { createJobChecks } from './job-checks.ts'

export interface SegmentResult {
  segment: number
  pages: number
  rows: number
  /** Set when the segment stopped early: the export was cancelled, failed or removed. */
  stopped?: string
}

/** A run that lost its segment to another run (it stalled and was taken over) must stop writing. */
class SegmentTakenOver extends Error {
  override name = 'SegmentTakenOver'
}

/**
 * Scans one segment of an export (parallel Scan: Segment / TotalSegments, optional index and filter)
 * page by page into its part. After each page: write the page at the checkpoint's position, then save
 * the new checkpoint (LastEvaluatedKey, pages, bytes, rows) in one script that also counts progress.
 * A retried or taken-over run resumes at the checkpoint, rewriting only the page that was not yet
 * committed, so the part never holds a row twice or misses one. Between pages it stops as soon as
 * the export is no longer processing (cancelled or failed).
 */
export default function createExportSegmentProcessor(deps: WorkerDeps) {
  const { gateway, config, logger, cache } = deps
  const { store, storage } = exportServices(deps)
  const checks = createJobChecks(config)

  return async function exportSegment(job: Job<QueuePayload<'export-segment'>>, token?: string, signal?: AbortSignal): Promise<SegmentResult> {
    const { exportId, segment, totalSegments } = job.data
    // Only the segment jobs the export's flow made (job id `<exportId>-<segment>`, its segment count) run.
    checks.require(
      typeof exportId === 'string' && Number.isInteger(segment) && job.id === `${exportId}-${segment}`,
      job,
      'the job id is not its export segment',
    )
    const record = await store.get(exportId)
    if (!record) return { segment, pages: 0, rows: 0, stopped: 'missing' }
    checks.require(totalSegments === record.segments && segment >= 0 && segment < totalSegments, job, "the segments are not the export's")
    if (!checks.tableAllowed(record.table)) {
      await store.finish(exportId, 'failed', { error: 'the table is not allowed (TABLES_ALLOW / TABLES_DENY)' })
      checks.refuse(job, 'the table is not allowed (TABLES_ALLOW / TABLES_DENY)')
    }
    // Names this run, so a stale run of the same segment is fenced off at its next commit.
    const owner = `${hostname()}:${process.pid}:${job.attemptsStarted}:${randomBytes(4).toString('hex')}`
    const claim = await store.claimSegment(exportId, segment, owner)
    if (claim.status !== 'processing') return { segment, pages: 0, rows: 0, stopped: claim.status }
    let cp: Checkpoint = claim.checkpoint ?? { ...FRESH_CHECKPOINT }
    if (cp.done) return { segment, pages: cp.pages, rows: cp.rows }
    if (cp.pages > 0) {
      cp = { ...cp, resumes: cp.resumes + 1 }
      logger.info({ msg: 'export.segment.resume', exportId, segment, pages: cp.pages, rows: cp.rows, bytes: cp.bytes })
    }
    const fields = fieldsOf(record)
    const names = record.format === 'csv' && !fields ? new Set(cp.names ?? []) : undefined
    const limit = config.EXPORT_PAGE_LIMIT > 0 ? { Limit: config.EXPORT_PAGE_LIMIT } : {}
    const ref = { exportId, segment }
    // With `fields`, only those paths (and the keys) are read: a ProjectionExpression beside the query's or filter's names.
    const projected = async (input: { ExpressionAttributeNames?: Record<string, string> }) => {
      if (!fields) return {}
      const projection = exportProjection(await cache.describe(record.table), fields, record.index)
      return {
        ProjectionExpression: projection.ProjectionExpression,
        ExpressionAttributeNames: { ...input.ExpressionAttributeNames, ...projection.ExpressionAttributeNames },
      }
    }
    // Built on the first read, inside the error handling below (a table that is gone fails the export).
    let built: Promise<QueryCommandInput | ScanCommandInput> | undefined
    const inputOf = async (): Promise<QueryCommandInput | ScanCommandInput> => {
      if (record.query) {
        // A query export is one segment: a Query cannot be split; the checkpoint is its LastEvaluatedKey.
        const query = JSON.parse(record.query) as ExportQuery
        const q = buildQuery(await cache.describe(record.table), {
          ...query,
          ...(record.index ? { index: record.index } : {}),
          ...(record.filter ? { filter: record.filter } : {}),
        })
        return { TableName: record.table, ...q, ...(await projected(q)), ...limit }
      }
      const filter = record.filter ? buildScanFilter(record.filter) : {}
      return {
        TableName: record.table,
        Segment: segment,
        TotalSegments: totalSegments,
        ...(record.index ? { IndexName: record.index } : {}),
        ...filter,
        ...(await projected(filter)),
        ...limit,
      }
    }
    const read = async (key: string | null): Promise<ScanCommandOutput> => {
      built ??= inputOf()
      const input = { ...(await built), ...(key ? { ExclusiveStartKey: decodeStartKey(key) } : {}) }
      return gateway.send<ScanCommandOutput>(
        record.table,
        record.query ? new QueryCommand(input as QueryCommandInput) : new ScanCommand(input as ScanCommandInput),
      )
    }
    const scan = read
    // The next page is requested while this one is written and committed, so the table is never idle
    // waiting on us; it is only ever one page ahead, and nothing of it counts until it is committed.
    let ahead: Promise<ScanCommandOutput> | undefined
    const settle = async () => {
      await ahead?.catch(() => {})
      ahead = undefined
    }

    try {
      let pending = scan(cp.key)
      for (;;) {
        const page = await pending
        const nextKey = encodeStartKey(page.LastEvaluatedKey)
        ahead = nextKey === null ? undefined : scan(nextKey)
        // Awaited (and its failure handled) on the next turn; this only keeps it from counting as unhandled meanwhile.
        ahead?.catch(() => {})
        const items = page.Items ?? []
        const data = renderPage(record.format, items, names, fields)
        // A run that stalled and was taken over must not write over the part its successor is writing:
        // fenced before each write as well as at each commit (the gap between check and write is all that is left).
        if (!(await store.ownsSegment(exportId, segment, owner))) throw new SegmentTakenOver(`segment ${segment} of ${exportId} is owned by another run`)
        try {
          await storage.writePart(ref, cp, data)
        } catch (err) {
          if (!(err instanceof PartLostError)) throw err
          // The part lost committed pages (a crash before they reached the disk): start the segment over.
          logger.warn({ msg: 'export.segment.restart', exportId, segment, reason: err.message })
          await settle()
          cp = { ...FRESH_CHECKPOINT, resumes: cp.resumes }
          names?.clear()
          pending = scan(null)
          continue
        }
        const next: Checkpoint = {
          key: nextKey,
          pages: cp.pages + 1,
          bytes: cp.bytes + data.length,
          rows: cp.rows + items.length,
          scanned: cp.scanned + (page.ScannedCount ?? items.length),
          done: nextKey === null,
          resumes: cp.resumes,
          ...(names ? { names: [...names] } : {}),
        }
        // Without a total, a running segment counts as pages / (pages + 1): rising, never 1 until done.
        const fraction = next.done ? 1 : next.pages / (next.pages + 1)
        const outcome = await store.commitPage(exportId, segment, owner, next, fraction, totalSegments)
        if (outcome === 'fenced') throw new SegmentTakenOver(`segment ${segment} of ${exportId} is owned by another run`)
        if (outcome !== 'ok') {
          await settle()
          logger.info({ msg: 'export.segment.stopped', exportId, segment, status: outcome, pages: cp.pages })
          return { segment, pages: cp.pages, rows: cp.rows, stopped: outcome }
        }
        cp = next
        if (cp.done) return { segment, pages: cp.pages, rows: cp.rows }
        if (signal?.aborted) {
          // The worker is stopping (its jobs were cancelled): hand the segment back at once, from this checkpoint.
          await settle()
          logger.info({ msg: 'export.segment.released', exportId, segment, pages: cp.pages })
          throw await deferJob(job, token, 0)
        }
        pending = ahead!
        ahead = undefined
      }
    } catch (err) {
      await settle()
      if (err instanceof DelayedError) throw err
      if (isBudgetExhausted(err)) throw await deferJob(job, token, 1000)
      // A permanent failure (the table gone, DynamoDB refusing the scan or query) fails the export at once.
      const { final: lastAttempt, error } = failOrRetry(job, err)
      if (lastAttempt && !(err instanceof SegmentTakenOver)) {
        // Fails the export now, so the other segments stop at their next page.
        // Shown to API clients: the driver's own text stays in the log line below.
        await store.finish(exportId, 'failed', { error: `segment ${segment}: ${safeReason(err)}` })
      }
      logger.warn({ msg: 'export.segment.error', exportId, segment, pages: cp.pages, lastAttempt, err: (err as Error).message })
      throw error
    }
  }
}
