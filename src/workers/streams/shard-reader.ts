import { type DynamoDBStreamsClient, GetRecordsCommand, type GetRecordsCommandOutput, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams'
import type { LRUCache } from 'lru-cache'
import type { CacheService } from '../../shared/cache/cache-service.ts'
import type { Logger } from '../../shared/logger.ts'
import type { ShardLeases } from './lease.ts'
import { changeOf } from './records.ts'
import { checkpointOf, checkpointState, DONE } from './shard-plan.ts'

/** Records per GetRecords call (DynamoDB's maximum). */
const PAGE = 1000

/** An iterator a process kept from its last pass over a shard, valid while the checkpoint is still `seq`. */
export interface KeptIterator {
  seq: string | undefined
  iterator: string
}

export interface ShardReaderDeps {
  client: DynamoDBStreamsClient
  leases: ShardLeases
  cache: Pick<CacheService, 'applyChanges' | 'invalidateTable'>
  logger: Logger
  pollMs: number
  leaseMs: number
  /** Iterators kept between passes in this process (they save a GetShardIterator per shard and pass). */
  kept: LRUCache<string, KeptIterator>
}

export interface ShardRead {
  table: string
  arn: string
  shard: string
  /** The holder's lease token. */
  token: string
  /** The shard's state when the lease was taken. */
  state: string | undefined
  /** True once the pass should end. */
  stop(): boolean
}

/** How a shard's read ended: read to its end, lease lost to another holder, or the pass ended. */
export type ShardOutcome = 'done' | 'lease-lost' | 'stopped'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const named = (err: unknown, name: string) => (err as Error | undefined)?.name === name

/**
 * Reads one leased shard from its checkpoint until the pass ends or the shard is read to its end:
 * applies each page of records to the cache, then moves the checkpoint (under the lease). An expired
 * iterator is renewed after the checkpoint; a trimmed position means history was lost: the table is
 * invalidated whole and reading goes on from the trim horizon.
 */
export async function readShard(deps: ShardReaderDeps, read: ShardRead): Promise<ShardOutcome> {
  const { client, leases, cache, logger } = deps
  const { table, arn, shard, token } = read
  const keptKey = `${arn}|${shard}`
  let seq = checkpointOf(read.state)
  const kept = deps.kept.get(keptKey)
  deps.kept.delete(keptKey)
  let iterator = kept && kept.seq === seq ? kept.iterator : undefined
  let renewedAt = Date.now()
  // Whether the live hash says this shard was found at its tip since its last record (for /metrics).
  let tipMarked = false

  async function historyLost(why: string): Promise<boolean> {
    logger.warn({ msg: 'streams.history-lost', table, shard, why, checkpoint: seq })
    await cache.invalidateTable(table)
    await leases.historyLost(table)
    seq = undefined
    return leases.commit(table, shard, token, '')
  }

  async function open(): Promise<string | undefined> {
    try {
      const out = await client.send(
        new GetShardIteratorCommand({
          StreamArn: arn,
          ShardId: shard,
          ShardIteratorType: seq ? 'AFTER_SEQUENCE_NUMBER' : 'TRIM_HORIZON',
          ...(seq ? { SequenceNumber: seq } : {}),
        }),
      )
      return out.ShardIterator
    } catch (err) {
      if (!seq || !named(err, 'TrimmedDataAccessException')) throw err
      if (!(await historyLost('checkpoint trimmed'))) return undefined
      return open()
    }
  }

  while (!read.stop()) {
    try {
      iterator ??= await open()
    } catch (err) {
      if (!named(err, 'ResourceNotFoundException')) throw err
      // The shard is gone from the stream (trimmed away) with records this follower never read.
      if (await historyLost('shard gone')) await leases.commit(table, shard, token, DONE)
      return 'done'
    }
    if (!iterator) return 'lease-lost'
    let out: GetRecordsCommandOutput
    try {
      out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: PAGE }))
    } catch (err) {
      iterator = undefined
      if (named(err, 'ExpiredIteratorException')) continue
      if (named(err, 'TrimmedDataAccessException')) {
        if (!(await historyLost('position trimmed'))) return 'lease-lost'
        continue
      }
      throw err
    }
    const records = out.Records ?? []
    if (records.length > 0) {
      await cache.applyChanges(table, records.map(changeOf))
      const applied = records.map((r) => r.dynamodb?.SequenceNumber ?? '')
      const last = applied[applied.length - 1]!
      const created = records[records.length - 1]!.dynamodb?.ApproximateCreationDateTime?.getTime()
      if (!(await leases.commit(table, shard, token, checkpointState(last), applied, created))) return 'lease-lost'
      seq = last
      renewedAt = Date.now()
      tipMarked = false
    }
    if (!out.NextShardIterator) {
      // Closed and read to its end: its children may start.
      return (await leases.commit(table, shard, token, DONE)) ? 'done' : 'lease-lost'
    }
    iterator = out.NextShardIterator
    if (records.length === 0) {
      // At the tip: say so once per record applied, and with each renewal (a mark older than the lease's
      // expiry no longer counts as caught up).
      if (!tipMarked || Date.now() - renewedAt > deps.leaseMs / 3) {
        if (!(await leases.take(table, shard, token, true))) return 'lease-lost'
        renewedAt = Date.now()
        tipMarked = true
      }
      await sleep(deps.pollMs)
    }
  }
  if (iterator) deps.kept.set(keptKey, { seq, iterator })
  return 'stopped'
}
