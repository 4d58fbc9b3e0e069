import { DescribeStreamCommand, type DynamoDBStreamsClient, ListStreamsCommand } from '@aws-sdk/client-dynamodb-streams'
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../../shared/redis/keys.ts'
import { ARN_FIELD, DONE, planShards, type ShardInfo } from './shard-plan.ts'
import { readShard, type ShardOutcome, type ShardReaderDeps } from './shard-reader.ts'

export interface TablePassDeps extends ShardReaderDeps {
  redis: Redis
  keys: RedisKeys
}

/** What one pass did, for its job's result (Bull Board). */
export interface PassReport {
  stream: string | null
  shards: number
  /** Shards this pass held a lease on at some point. */
  held: string[]
  outcomes: Record<string, ShardOutcome | 'failed'>
}

/** DescribeStream is limited per account; a shard that ends asks for a fresh list sooner. */
const DESCRIBE_EVERY_MS = 1000
/** The lease guarding a stream's first follow (or a new stream of the table). */
const INIT_LEASE = '@init'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function newestStream(client: DynamoDBStreamsClient, table: string): Promise<string | undefined> {
  let newest: { arn: string; label: string } | undefined
  let start: string | undefined
  do {
    const page = await client.send(new ListStreamsCommand({ TableName: table, ...(start ? { ExclusiveStartStreamArn: start } : {}) }))
    for (const s of page.Streams ?? [])
      if (s.StreamArn && (!newest || (s.StreamLabel ?? '') > newest.label)) newest = { arn: s.StreamArn, label: s.StreamLabel ?? '' }
    start = page.LastEvaluatedStreamArn
  } while (start)
  return newest?.arn
}

async function describeShards(client: DynamoDBStreamsClient, arn: string): Promise<ShardInfo[]> {
  const shards: ShardInfo[] = []
  let start: string | undefined
  do {
    const { StreamDescription: d } = await client.send(new DescribeStreamCommand({ StreamArn: arn, ...(start ? { ExclusiveStartShardId: start } : {}) }))
    for (const s of d?.Shards ?? []) {
      if (!s.ShardId) continue
      shards.push({ id: s.ShardId, ...(s.ParentShardId ? { parent: s.ParentShardId } : {}), closed: s.SequenceNumberRange?.EndingSequenceNumber !== undefined })
    }
    start = d?.LastEvaluatedShardId
  } while (start)
  return shards
}

/**
 * One pass over a table's stream until `until` (or the abort signal): reads, in parallel, every shard
 * that is ready (its parent done) and whose lease it can take, and gives the leases up at the end so
 * the next pass (on any worker) takes over at once. The first follow of a stream invalidates the table
 * once and marks the closed shards done: what they held happened before the follower knew the table.
 */
export async function followTablePass(deps: TablePassDeps, table: string, pass: { token: string; until: number; signal?: AbortSignal }): Promise<PassReport> {
  const { client, redis, keys, leases, cache, logger } = deps
  const report: PassReport = { stream: null, shards: 0, held: [], outcomes: {} }
  const arn = await newestStream(client, table)
  if (!arn) return report
  report.stream = arn
  const hash = keys.streamFollow(table, 'shards')
  const stop = () => Date.now() >= pass.until || pass.signal?.aborted === true

  let shards = await describeShards(client, arn)
  report.shards = shards.length
  if ((await redis.hget(hash, ARN_FIELD)) !== arn) {
    if (!(await leases.take(table, INIT_LEASE, pass.token))) return report
    try {
      // Closed shards and parents already gone hold what happened before: the invalidation covers them.
      const listed = new Set(shards.map((s) => s.id))
      const gone = shards.flatMap((s) => (s.parent && !listed.has(s.parent) ? [s.parent] : []))
      const states = [...shards.filter((s) => s.closed).map((s) => s.id), ...gone].map((id) => [id, DONE])
      // The live hash (what /metrics reads per shard) starts over with the shards; the stats counters stay.
      await redis
        .multi()
        .del(hash)
        .hset(hash, ARN_FIELD, arn, ...states.flat())
        .del(keys.streamFollow(table, 'live'))
        .exec()
      await cache.invalidateTable(table)
      logger.info({ msg: 'streams.follow.start', table, stream: arn, shards: shards.length })
    } finally {
      await leases.release(table, INIT_LEASE, pass.token)
    }
  }

  const running = new Map<string, Promise<void>>()
  let describedAt = Date.now()
  let firstError: unknown
  while (!stop() && firstError === undefined) {
    if (Date.now() - describedAt >= DESCRIBE_EVERY_MS) {
      shards = await describeShards(client, arn)
      report.shards = shards.length
      describedAt = Date.now()
    }
    const { [ARN_FIELD]: followed, ...states } = await redis.hgetall(hash)
    // Another worker began following a newer stream of the table: this pass is out of date.
    if (followed !== arn) break
    const plan = planShards(shards, states)
    if (plan.lost.length > 0) {
      logger.warn({ msg: 'streams.history-lost', table, shards: plan.lost, why: 'unread shard gone' })
      await cache.invalidateTable(table)
      await leases.historyLost(table)
      await redis.hset(hash, ...plan.lost.flatMap((id) => [id, DONE]))
      await redis.hdel(keys.streamFollow(table, 'live'), ...plan.lost.flatMap((id) => [`e:${id}`, `c:${id}`, `t:${id}`]))
    }
    if (plan.prune.length > 0) await redis.hdel(hash, ...plan.prune)
    for (const shard of plan.ready) {
      if (running.has(shard) || !(await leases.take(table, shard, pass.token))) continue
      if (!report.held.includes(shard)) report.held.push(shard)
      const work = readShard(deps, { table, arn, shard, token: pass.token, state: states[shard], stop: () => stop() || firstError !== undefined })
        .then(
          (outcome) => {
            report.outcomes[shard] = outcome
            // A finished shard's children are listed already; look again at once.
            if (outcome === 'done') describedAt = 0
          },
          (err) => {
            report.outcomes[shard] = 'failed'
            logger.warn({ msg: 'streams.shard.failed', table, shard, err: (err as Error).message })
            firstError ??= err
          },
        )
        .finally(async () => {
          running.delete(shard)
          await leases.release(table, shard, pass.token).catch(() => {})
        })
      running.set(shard, work)
    }
    await sleep(Math.max(0, Math.min(deps.pollMs, pass.until - Date.now())))
  }
  await Promise.all(running.values())
  if (firstError !== undefined) throw firstError
  return report
}
