import type { ChainableCommander, Cluster, Redis } from 'ioredis'

/** True when the connection is a Redis Cluster client (createRedis with REDIS_CLUSTER). */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true
}

/** The connections that together hold every key: each master of a cluster, else the one connection. */
export function masters(redis: Redis): Redis[] {
  return isCluster(redis) ? (redis as unknown as Cluster).nodes('master') : [redis]
}

/** The part of a key Redis Cluster hashes to pick its slot: the first non-empty `{...}`, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{')
  if (open < 0) return key
  const close = key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

export interface KeyedCommand {
  /** The command's key (with several keys, any one: they must share a hash tag anyway). */
  key: string
  /** Adds exactly one command to the pipeline. */
  add(pipeline: ChainableCommander): void
}

/**
 * Pipelines commands whose keys may lie in different slots; answers [error, reply] per command in
 * order. One pipeline on a single Redis; on a cluster one per hash tag, sent together, since ioredis
 * refuses a pipeline whose keys span nodes (and a slot can move between nodes during resharding).
 */
export async function pipelineByTag(redis: Redis, commands: readonly KeyedCommand[]): Promise<Array<[Error | null, unknown]>> {
  const groups = new Map<string, number[]>()
  const split = isCluster(redis)
  for (const [i, command] of commands.entries()) {
    const tag = split ? hashTagOf(command.key) : ''
    const group = groups.get(tag)
    if (group) group.push(i)
    else groups.set(tag, [i])
  }
  const results: Array<[Error | null, unknown]> = new Array(commands.length)
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const pipeline = redis.pipeline()
      for (const i of indexes) commands[i]!.add(pipeline)
      const replies = (await pipeline.exec()) ?? []
      for (const [n, i] of indexes.entries()) results[i] = replies[n] ?? [new Error('no reply'), null]
    }),
  )
  return results
}

/**
 * Every key matching `match`, in batches as SCAN returns them. On a cluster SCAN runs on each master
 * in turn: a cursor only walks the keyspace of the node it was sent to.
 */
export async function* scanKeys(redis: Redis, match: string, count = 1000): AsyncGenerator<string[]> {
  const nodes = masters(redis)
  // A cluster client that has not learnt its nodes yet would scan nothing and report nothing found.
  if (nodes.length === 0) throw new Error('Redis Cluster: no master node is known yet')
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', match, 'COUNT', count)
      cursor = next
      if (found.length > 0) yield found
    } while (cursor !== '0')
  }
}
