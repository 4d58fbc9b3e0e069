import type { Redis } from 'ioredis'
import type { LogSink } from '../logger.ts'
import type { NearCache } from './near-cache.ts'

/** The message that stands for every table at once (`*` cannot appear in a DynamoDB table name). */
export const ALL_TABLES = '*'
/** The message that stands for the table list, which belongs to no table. */
export const TABLE_LIST = ''

/**
 * A table (or the list, or every table) as its name; bumped dependency tags of one table as JSON
 * `{"t":table,"d":[tags]}` (no table name starts with `{`).
 */
export function invalidationMessage(table: string | null | typeof ALL_TABLES, tags?: readonly string[]): string {
  return tags ? JSON.stringify({ t: table, d: tags }) : (table ?? TABLE_LIST)
}

/** What a message asks a near cache to drop; undefined for a message it cannot read. */
export function parseInvalidation(message: string): { all: true } | { table: string | null; tags?: string[] } | undefined {
  if (message === ALL_TABLES) return { all: true }
  if (!message.startsWith('{')) return { table: message === TABLE_LIST ? null : message }
  try {
    const { t, d } = JSON.parse(message) as { t?: unknown; d?: unknown }
    if ((typeof t !== 'string' && t !== null) || !Array.isArray(d) || !d.every((x) => typeof x === 'string')) return undefined
    return { table: t, tags: d }
  } catch {
    return undefined
  }
}

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
 * worker process) drops the table's entries here, or only those depending on the bumped tags. While the subscription is down the feed is not
 * live and the near cache is bypassed; when it comes back the near cache starts empty, since messages
 * published meanwhile are lost.
 */
export function startInvalidationFeed({ subscriber, channel, near, logger }: InvalidationFeedOptions): InvalidationFeed {
  let live = false
  let closing = false

  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return
    const notice = parseInvalidation(message)
    // A message this process cannot read (a newer version's?) drops everything: never keep too much.
    if (!notice || 'all' in notice) near.dropAll()
    else if (notice.tags) near.dropTags(notice.table, notice.tags)
    else near.dropTable(notice.table)
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
