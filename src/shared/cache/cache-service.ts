import { gunzipSync } from 'node:zlib'
import type { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { createTablePolicy } from '../access.ts'
import type { ApiConfig, Config, WorkerConfig } from '../config.ts'
import { createCursorCodec } from '../cursor.ts'
import type { DynamoGateway } from '../dynamo/gateway.ts'
import { createResourceLoader } from '../dynamo/resource-loader.ts'
import type { TableDescription } from '../dynamo/table-description.ts'
import { errors } from '../errors.ts'
import type { LogSink } from '../logger.ts'
import type { QueueProducers } from '../queues/index.ts'
import type { RedisKeys } from '../redis/keys.ts'
import type { InvalidationMode, InvalidationOptions, ItemChange } from './coherence.ts'
import { applyChanges } from './coherence.ts'
import { dependenciesOf } from './dependencies.ts'
import { invalidateTable, rememberCachedTable } from './invalidation.ts'
import { ALL_TABLES, type InvalidationFeed, invalidationChannel, startInvalidationFeed } from './invalidation-feed.ts'
import { createNearCache, type NearCache } from './near-cache.ts'
import { createOwedInvalidations } from './owed-invalidations.ts'
import { type CacheOutcome, createReadCache, type LoadedValue, type ReadCache } from './read-cache.ts'
import type { CachedResource } from './resources.ts'
import { type CacheStats, createCacheStats } from './stats.ts'
import { type Bumped, createCacheStore } from './store.ts'

/** Tables this process remembers having told the cached-tables set about. */
const KNOWN_TABLES_MAX = 10_000

/**
 * Seconds a dependency generation outlives its last bump: the longest any entry lives (its ttl and
 * stale-if-error), and a minute more for clocks and slow writers.
 */
function dependencyTtlOf(config: Config): number {
  const longestTtl = Math.max(config.TABLE_LIST_TTL, config.TABLE_DETAILS_TTL, config.TABLE_ITEMS_TTL, config.QUERY_RESULTS_TTL, config.NEGATIVE_TTL)
  return longestTtl + config.STALE_IF_ERROR_TTL + 60
}

/** True for the answer about a table that does not exist (its details' 404, or the error of a read of it). */
function isMissingTable(resource: CachedResource, answer: { status?: number; error?: unknown } | undefined): boolean {
  if (resource.table === null || !answer) return false
  if (resource.kind === 'details' && answer.status === 404) return true
  return (answer.error as { code?: string } | undefined)?.code === 'DC_ERR_TABLE_NOT_FOUND'
}

export interface CacheServiceDeps {
  config: ApiConfig | WorkerConfig
  redis: Redis
  keys: RedisKeys
  /** DynamoDB calls go through the shared gateway (breaker, budget, metrics). */
  gateway: DynamoGateway
  queues: QueueProducers
  logger?: LogSink
  /** Statistics on (default) or off. */
  stats?: boolean
  /** An in-process near cache in front of Redis (the API's); its subscriber is a connection of its own. */
  near?: { ttlMs: number; maxBytes: number; subscriber: Redis }
}

export interface CacheService {
  /** Reads a resource through near cache, Redis and DynamoDB (see read-cache.ts). */
  read: ReadCache['get']
  /** Loads an entry again unless it is fresh already; one DynamoDB read fleet-wide. */
  refresh: ReadCache['refresh']
  stats: CacheStats
  /** A table's description through the cache (and a short in-process memo). */
  describe(table: string): Promise<TableDescription>
  /** Drops this process's near-cache copies at once (the feed tells the other processes). */
  forget(table: string | null | typeof ALL_TABLES): void
  /** True while the near cache may answer: it is on and its invalidation feed is subscribed. */
  nearCacheLive(): boolean
  /**
   * The near cache's fresh copy of an entry when it may answer at once, as `read` would answer it, with
   * nothing counted and nothing awaited (the API's hit lane, src/api/hit-lane.ts); undefined otherwise.
   * `countHit` counts the answer once it is sent.
   */
  peekFresh: ReadCache['peekFresh']
  /** A fresh hit from Redis, else undefined with nothing done (the hit lane's second chance; read-cache.ts). */
  readFresh: ReadCache['readFresh']
  /** Counts a hit answered without `read` (the hit lane) in the statistics, as `read` counts one. */
  countHit(resource: CachedResource, status: number): void
  /**
   * Invalidates exactly what these writes of `table` can change (docs/coherence.md): each item, its
   * partition, the index partitions of its old and new image, and the table's scan pages. Pipelined:
   * one round trip per slot; every API process's near cache drops the same.
   */
  applyChanges(table: string, changes: ItemChange[], options?: InvalidationOptions): Promise<Bumped | undefined>
  /** Invalidates every entry of a table (DELETE /cache/:table). */
  invalidateTable(table: string, options?: InvalidationOptions): Promise<void>
  /**
   * After a write whose invalidation failed (Redis unreachable): the table is invalidated whole once
   * Redis takes it (owed-invalidations.ts); this process's near copies go at once.
   */
  oweInvalidation(table: string): void
  /** Tables owed an invalidation now (dynacache_cache_invalidations_owed). */
  readonly invalidationsOwed: number
  /**
   * Stores a value as the entry of a resource at once (write-through). `after` is what applyChanges
   * answered for the write that produced the value: the entry is stored under the generations that
   * write left, so of two racing writers the older image is never served (read-cache.ts: store).
   */
  storeValue(resource: CachedResource, value: LoadedValue, after?: Bumped): Promise<void>
  /** The generations a resource's entry depends on now: read them before a load, store the load under them. */
  generationsOf(resource: CachedResource): Promise<Bumped>
  close(): Promise<void>
}

/**
 * Wires the read path the API and the workers share: the DynamoDB resource loader behind the Redis cache, with
 * refreshes queued, statistics counted and table descriptions memoised.
 */
export function createCacheService(deps: CacheServiceDeps): CacheService {
  const { config, redis, keys, queues, logger } = deps
  const tableAllowed = createTablePolicy(config.TABLES_ALLOW, config.TABLES_DENY)
  const store = createCacheStore({
    redis,
    keys,
    chunkBytes: config.CACHE_CHUNK_BYTES,
    staleIfErrorTtl: config.STALE_IF_ERROR_TTL,
    dependencyTtl: dependencyTtlOf(config),
  })
  const stats = createCacheStats({ redis, keys, ttlSeconds: config.STATS_TTL, enabled: deps.stats !== false })
  const { gateway } = deps
  // Key schemas do not change while a table exists, so a short memo is safe and saves a Redis read per miss.
  const descriptions = new LRUCache<string, TableDescription>({ max: 1000, ttl: 60_000 })
  // Bounded: a table forgotten here is only added to the Redis set again (SADD is idempotent). The ttl
  // re-adds every table now and then, so a set Redis lost (eviction, a flush) heals by itself.
  const knownCached = new LRUCache<string, true>({ max: KNOWN_TABLES_MAX, ttl: 10 * 60_000 })
  const recentlyQueued = new LRUCache<string, true>({ max: 10_000, ttl: 2000 })
  // Reads the cache makes for itself (a description for dependency tags) count in no statistics.
  const unrecorded = new WeakSet<CachedResource>()

  /** The dependency tags of a resource's entry; items and queries need the table's key schema. */
  async function dependencies(resource: CachedResource): Promise<readonly string[]> {
    if (resource.table === null || (resource.kind !== 'item' && resource.kind !== 'query')) return dependenciesOf(resource, undefined)
    const description = await describe(resource.table, true).catch(() => undefined)
    return dependenciesOf(resource, description)
  }

  const loader = createResourceLoader({
    gateway,
    // Required for API and workers alike: a worker refreshing page 2 must decode the page's cursor.
    cursors: createCursorCodec(config.CURSOR_SECRET),
    tableAllowed,
    describe: (table) => describe(table),
    negativeTtl: config.NEGATIVE_TTL,
  })

  let nearCache: NearCache | undefined
  let feed: InvalidationFeed | undefined
  if (deps.near && deps.near.ttlMs > 0) {
    nearCache = createNearCache(deps.near)
    feed = startInvalidationFeed({
      subscriber: deps.near.subscriber,
      channel: invalidationChannel(keys.prefix),
      near: nearCache,
      ...(logger ? { logger } : {}),
    })
  }

  const owed = createOwedInvalidations({
    invalidate: async (table) => {
      await invalidateTable(redis, keys, table, 'hard')
      nearCache?.dropTable(table)
    },
    ready: () => redis.status === 'ready',
    onReady: (listener) => redis.on('ready', listener),
    ...(logger ? { logger } : {}),
  })

  function recordOutcome(resource: CachedResource, outcome: CacheOutcome | 'error', answer?: { status?: number; error?: unknown }) {
    if (unrecorded.has(resource)) return
    // A table that does not exist leaves its negative entry and nothing else: no counters, no hot reads,
    // no place in the cached-tables set, so random names cannot grow Redis or this process.
    if (isMissingTable(resource, answer)) return
    stats.record(resource.table, outcome)
    if (resource.kind === 'items' || resource.kind === 'query') stats.recordRead(resource)
  }

  const cache = createReadCache({
    config,
    ...(nearCache && feed ? { near: { cache: nearCache, live: () => feed.live } } : {}),
    store,
    load: loader,
    redisReady: () => redis.status === 'ready',
    dependencies,
    ...(logger ? { logger } : {}),
    scheduleRefresh(resource: CachedResource, id: string) {
      const dedupId = `${resource.table ?? '*'}:${id}`
      // The queue deduplicates fleet-wide; this saves the round trip for a burst within one process.
      if (recentlyQueued.has(dedupId)) return
      recentlyQueued.set(dedupId, true)
      queues.enqueue('cache-refresh', { resource }, { deduplication: { id: dedupId } }).catch((err) => {
        logger?.warn({ msg: 'cache.refresh.not-queued', table: resource.table, err: (err as Error).message, cause: ((err as Error).cause as Error)?.message })
      })
    },
    onOutcome: recordOutcome,
    async beforeWrite(resource, status) {
      // A table that does not exist (its details are a 404) is not remembered: its negative entry lives
      // NEGATIVE_TTL. A missing item of a table that exists is, so DELETE /cache drops its 404 too.
      if (resource.table === null || (resource.kind === 'details' && status === 404) || knownCached.has(resource.table)) return
      await rememberCachedTable(redis, keys, resource.table)
      knownCached.set(resource.table, true)
    },
  })

  /** `quiet`: a read of the cache's own (dependencies), counted in no statistics. */
  async function describe(table: string, quiet = false): Promise<TableDescription> {
    const memo = descriptions.get(table)
    if (memo) return memo
    const resource: CachedResource = { table, kind: 'details', params: {} }
    if (quiet) unrecorded.add(resource)
    const result = await cache.get(resource)
    const body = result.body ?? gunzipSync(result.gzip!)
    if (result.status === 404) throw new errors.DC_ERR_TABLE_NOT_FOUND(table)
    const description = JSON.parse(body.toString()) as TableDescription
    descriptions.set(table, description)
    return description
  }

  return {
    read: (resource, options) => cache.get(resource, options),
    refresh: (resource) => cache.refresh(resource),
    stats,
    describe,
    forget(table) {
      if (table === ALL_TABLES) nearCache?.dropAll()
      else nearCache?.dropTable(table)
    },
    nearCacheLive: () => feed?.live ?? false,
    peekFresh: (resource, id) => cache.peekFresh(resource, id),
    readFresh: (resource, id, ifNoneMatch) => cache.readFresh(resource, id, ifNoneMatch),
    countHit: (resource, status) => recordOutcome(resource, 'hit', { status }),
    async applyChanges(table, changes, options = {}) {
      if (changes.length === 0) return new Map()
      const description = await describe(table, true).catch(() => undefined)
      const whole = (t: string, mode: InvalidationMode) => invalidateTable(redis, keys, t, mode)
      return applyChanges(
        { store, invalidateTable: whole, ...(nearCache ? { near: nearCache } : {}) },
        table,
        description,
        changes,
        options.mode ?? config.INVALIDATION_MODE,
      )
    },
    async invalidateTable(table, options = {}) {
      await invalidateTable(redis, keys, table, options.mode ?? config.INVALIDATION_MODE)
      nearCache?.dropTable(table)
    },
    oweInvalidation(table) {
      nearCache?.dropTable(table)
      owed.owe(table)
    },
    get invalidationsOwed() {
      return owed.size
    },
    storeValue: (resource, value, after) => cache.store(resource, value, after),
    generationsOf: (resource) => cache.generations(resource),
    async close() {
      owed.close()
      await feed?.close()
      await stats.close()
    },
  }
}
