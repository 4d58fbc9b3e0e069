import type { Redis } from 'ioredis'
import type { LogSink } from '../logger.ts'
import type { NearCache } from './near-cache.ts'

/** The message that stands for every table at once (`*` cannot appear in a DynamoDB table name). */
export const ALL_TABLES = '*'
/** The message that stands for the table list, which belongs to no table. */
export const TABLE_LIST = ''

export const invalidationMessage = (table: string | null | typeof ALL_TABLES) => table ?? TABLE_LIST

/** One channel per deployment (REDIS_PREFIX); PUBLISH reaches subscribers on every Cluster node. */
export const invalidationChannel = (prefix: string) => `${prefix}:{*}:invalidations`

export interface InvalidationFeed {
  /** True while subscribed: only then may the near cache answer, since no invalidation can be missed. */
  readonly live: boolean
  close(): Promise<void>
}

export interface InvalidationFeedOptions {
  /** A connection of its own: a subscribed connection can run no other command. */
  subscriber: Redis
  channel: string
  near: NearCache
  logger?: LogSink
}

/**
 * Keeps an API process's near cache honest: every invalidation published on `channel` (by any API or
 * worker process) drops the table's entries here. While the subscription is down the feed is not
 * live and the near cache is bypassed; when it comes back the near cache starts empty, since messages
 * published meanwhile are lost.
 */
export function startInvalidationFeed({ subscriber, channel, near, logger }: InvalidationFeedOptions): InvalidationFeed {
  let live = false
  let closing = false

  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return
    if (message === ALL_TABLES) near.dropAll()
    else near.dropTable(message === TABLE_LIST ? null : message)
  })
  const subscribe = () => {
    subscriber.subscribe(channel).then(
      () => {
        near.dropAll()
        live = true
      },
      (err: Error) => logger?.warn({ msg: 'cache.near.subscribe-failed', err: err.message }),
    )
  }
  subscriber.on('close', () => {
    live = false
  })
  // After a reconnect ioredis resubscribes by itself; subscribing again is harmless and tells us when.
  subscriber.on('ready', () => {
    if (!closing) subscribe()
  })
  if (subscriber.status === 'ready') subscribe()

  return {
    get live() {
      return live
    },
    async close() {
      closing = true
      live = false
      subscriber.disconnect()
    },
  }
}
