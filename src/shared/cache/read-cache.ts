import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import type { Config } from '../config.ts'
import { isUnavailable } from '../error-classes.ts'
import type { LogSink } from '../logger.ts'
import { inSpan } from '../telemetry/tracing.ts'
import { type CacheOutcome, type CacheResult, etagOf, fromEntry, fromNear, type LoadedValue, type Loader } from './cache-result.ts'
import type { EntryMeta } from './entry-layout.ts'
import { freshnessOf } from './freshness.ts'
import { inflate } from './inflate.ts'
import type { NearCache, NearEntry, NearStamp } from './near-cache.ts'
import { type CachedResource, resourceId, staleIfErrorFor, ttlFor } from './resources.ts'
import { createSingleFlight } from './single-flight.ts'
import { type Bumped, type CacheStore, type StoredEntry, TABLE_GENERATION } from './store.ts'
import { createStoreFailureLog } from './store-failures.ts'

export { type CacheOutcome, type CacheResult, etagOf, type LoadedValue, type Loader } from './cache-result.ts'

const gzip = promisify(gzipCallback)

export interface ReadCacheOptions {
  config: Config
  store: CacheStore
  load: Loader
  /** Queues a background refresh of a stale entry (deduplicated by the queue). */
  scheduleRefresh(resource: CachedResource, id: string): void
  /**
   * Awaited before an entry is written (with the status it answers): where DELETE /cache must learn of
   * the table before its first entry exists, or an invalidation between the two would miss it.
   */
  beforeWrite?(resource: CachedResource, status: number): Promise<void>
  /**
   * The dependency tags of a resource's entry (dependencies.ts), checked with it in one round trip.
   * Without it an entry depends on its table's own generation only.
   */
  dependencies?(resource: CachedResource): readonly string[] | Promise<readonly string[]>
  /** Whether Redis can be used right now; when false every read bypasses the cache at once. */
  redisReady(): boolean
  /** Called once per answered read, for statistics: with the answer's status, or the error thrown. */
  onOutcome?(resource: CachedResource, outcome: CacheOutcome | 'error', answer?: { status?: number; error?: unknown }): void
  logger?: LogSink
  now?: () => number
  /** How waiting for another process's fill sleeps (tests pass one that advances a fake clock). */
  sleep?: (ms: number) => Promise<void>
  /**
   * The API's in-memory near cache, consulted before Redis while `live()` (its invalidation feed is
   * subscribed). Workers have none.
   */
  near?: { cache: NearCache; live(): boolean }
}

export interface GetOptions {
  /** The single ETag the client sent: a match needs no body. */
  ifNoneMatch?: string
  /** Cache-Control: no-cache: load from DynamoDB now. */
  noCache?: boolean
  /** The client takes no gzip: a near-cache hit then also keeps (and answers with) the inflated body. */
  plain?: boolean
}

export interface ReadCache {
  get(resource: CachedResource, options?: GetOptions): Promise<CacheResult>
  /** Background refresh: loads the entry again unless it is fresh already. One DynamoDB read fleet-wide. */
  refresh(resource: CachedResource): Promise<'refreshed' | 'fresh'>
  /**
   * Stores a value as a resource's entry at once (write-through). With `after`, the bump of the write
   * that produced the value: its tags are stored under the values that bump left, not the current ones,
   * so when two writers race, the older image lands under generations already gone and never answers.
   */
  store(resource: CachedResource, value: LoadedValue, after?: Bumped): Promise<void>
  /** The generations a resource's entry depends on now; a load that follows stores under them (`store`). */
  generations(resource: CachedResource): Promise<Bumped>
  /**
   * The entry from Redis if it is a fresh hit (kept near, as `get` keeps one), else undefined: nothing
   * is loaded, queued, counted, and no softly invalidated entry is used up. The API's hit lane asks this
   * and leaves every other case to `get`.
   */
  readFresh(resource: CachedResource, id: string, ifNoneMatch: string): Promise<CacheResult | undefined>
  /** The near cache's fresh copy when `get` would answer from it; nothing counted or awaited (the hit lane). */
  peekFresh(resource: CachedResource, id: string): NearEntry | undefined
}

export function createReadCache(options: ReadCacheOptions): ReadCache {
  const { config, store, load, scheduleRefresh, redisReady, onOutcome, logger, near } = options
  const noDeps: readonly string[] = []
  const dependencies = options.dependencies ?? (() => noDeps)
  const now = options.now ?? Date.now
  const policy = { staleThreshold: config.STALE_THRESHOLD }
  const storeFailed = createStoreFailureLog(logger, 10_000, now)
  const flights = createSingleFlight({
    store,
    now,
    // Waiters poll for another process's result this long before loading themselves.
    lockWaitMs: config.DYNAMO_TIMEOUT_MS + 1000,
    lockTtlMs: config.DYNAMO_TIMEOUT_MS * 2 + 1000,
    ...(options.sleep ? { sleep: options.sleep } : {}),
    ...(logger ? { logger } : {}),
    lockFailed: (table, err) => storeFailed(table, 'lock', err),
  })

  /**
   * Keeps what Redis just gave us (or what we just stored) for the next hits in this process. A
   * revalidation brings no body: its entry answers later revalidations, and is never kept in place
   * of a copy with the body.
   */
  function keepNear(resource: CachedResource, id: string, deps: readonly string[], result: CacheResult, since: NearStamp | undefined) {
    if (!near || !since || result.outcome === 'stale-if-error' || result.outcome === 'bypass' || result.invalidated) return
    const { status, etag, createdAt, ttl, gzip: body } = result
    if (!body && near.cache.get(resource.table, id)?.gzip) return
    near.cache.set(resource.table, id, { status, etag, createdAt, ttl, deps, ...(body ? { gzip: body } : {}) }, since)
  }

  /** Reads DynamoDB through the loader and stores the answer under the generation read with the miss. */
  async function loadAndStore(resource: CachedResource, id: string, generation: string, outcome: CacheOutcome, previous?: EntryMeta): Promise<CacheResult> {
    return storeLoaded(resource, id, generation, outcome, await load(resource), previous)
  }

  async function storeLoaded(resource: CachedResource, id: string, generation: string, outcome: CacheOutcome, value: LoadedValue, previous?: EntryMeta) {
    const compressed = await gzip(value.body)
    const meta = {
      createdAt: now(),
      ttl: value.ttl ?? ttlFor(resource.kind, config),
      etag: etagOf(value.body),
      status: value.status,
      size: value.body.length,
    }
    try {
      await options.beforeWrite?.(resource, meta.status)
      await store.write(resource.table, id, generation, meta, compressed, previous, staleIfErrorFor(resource.kind, meta.status, config))
    } catch (err) {
      storeFailed(resource.table, 'write', err)
    }
    return { outcome, status: meta.status, etag: meta.etag, createdAt: meta.createdAt, ttl: meta.ttl, gzip: compressed, body: value.body, collapsed: false }
  }

  /**
   * Loads an entry with single-flight: one load per entry in this process, and one across processes.
   * Only the caller that runs the fill keeps its value near, under its own stamp: a caller joining it
   * later may hold a stamp newer than the value (an invalidation came between), so it keeps nothing.
   */
  async function fill(
    resource: CachedResource,
    id: string,
    deps: readonly string[],
    generation: string,
    previous: StoredEntry | undefined,
    outcome: CacheOutcome,
    since?: NearStamp,
  ) {
    const keep = (result: CacheResult) => {
      keepNear(resource, id, deps, result, since)
      return result
    }
    const { value, collapsed } = await flights.run(
      resource.table,
      id,
      generation,
      previous?.meta.createdAt ?? 0,
      async () => keep(await loadAndStore(resource, id, generation, outcome, previous?.meta)),
      (entry) => keep(fromEntry(entry, outcome, true)),
      deps,
    )
    return collapsed ? { ...value, collapsed: true } : value
  }

  /** The near cache's copy while it is fresh, Redis is up and the invalidation feed is live. */
  function peekFresh(resource: CachedResource, id: string): NearEntry | undefined {
    const held = redisReady() && near?.live() ? near.cache.get(resource.table, id) : undefined
    return held && freshnessOf(held, now(), policy) === 'fresh' ? held : undefined
  }

  async function fromNearCache(resource: CachedResource, id: string, opts: GetOptions): Promise<CacheResult | undefined> {
    const held = peekFresh(resource, id)
    // A copy without its body can only answer a revalidation that matches it.
    const usable = held && (held.gzip !== undefined || (opts.ifNoneMatch !== undefined && opts.ifNoneMatch === held.etag))
    if (!usable) return undefined
    // A hot entry read by clients without gzip is inflated once, not on every hit.
    if (opts.plain && held.gzip && !held.plain) {
      const plain = await inflate(held.gzip)
      near!.cache.addPlain(resource.table, id, held, plain)
      return fromNear({ ...held, plain })
    }
    return fromNear(held)
  }

  async function bypass(resource: CachedResource): Promise<CacheResult> {
    const value = await load(resource)
    return {
      outcome: 'bypass',
      status: value.status,
      etag: etagOf(value.body),
      createdAt: now(),
      ttl: 0,
      body: value.body,
      collapsed: false,
    }
  }

  async function get(resource: CachedResource, opts: GetOptions = {}): Promise<CacheResult> {
    if (!redisReady()) return bypass(resource)
    const id = resourceId(resource)
    const since = near?.live() ? near.cache.stamp(resource.table) : undefined
    if (since && !opts.noCache) {
      const held = await fromNearCache(resource, id, opts)
      if (held) return held
    }
    let read: Awaited<ReturnType<CacheStore['read']>>
    const deps = await dependencies(resource)
    try {
      read = await store.read(resource.table, id, opts.noCache ? '' : opts.ifNoneMatch, { deps, soft: !opts.noCache })
    } catch (err) {
      logger?.warn({ msg: 'cache.bypass', table: resource.table, err: (err as Error).message })
      return bypass(resource)
    }
    const { entry, generation } = read
    if (!entry) return fill(resource, id, deps, generation, undefined, 'miss', since)
    if (read.invalidated) {
      // Invalidated softly: this one answer, with no freshness left, while one refresh is queued; an
      // entry past its ttl is never served, soft or not.
      if (freshnessOf(entry.meta, now(), policy) === 'expired') return fill(resource, id, deps, generation, entry, 'miss', since)
      scheduleRefresh(resource, id)
      return { ...fromEntry(entry, 'stale'), ttl: 0, invalidated: true }
    }

    const freshness = opts.noCache ? 'expired' : freshnessOf(entry.meta, now(), policy)
    if (freshness === 'fresh') {
      const hit = fromEntry(entry, 'hit')
      keepNear(resource, id, deps, hit, since)
      return hit
    }
    if (freshness === 'stale') {
      scheduleRefresh(resource, id)
      return fromEntry(entry, 'stale')
    }
    try {
      return await fill(resource, id, deps, generation, entry, opts.noCache ? 'miss' : 'revalidated', since)
    } catch (err) {
      if (!isUnavailable(err)) throw err
      // The entry was read without its body when the ETag matched; fetch it now to serve it.
      const full = entry.gzip ? entry : (await store.read(resource.table, id, '', { deps })).entry
      if (!full) throw err
      return fromEntry(full, 'stale-if-error', false, err as Error)
    }
  }

  return {
    get(resource, opts) {
      return inSpan('cache.lookup', { 'dynacache.table': resource.table ?? '*', 'dynacache.kind': resource.kind }, async (span) => {
        try {
          const result = await get(resource, opts)
          span?.setAttribute('dynacache.cache.outcome', result.outcome)
          onOutcome?.(resource, result.outcome, { status: result.status })
          return result
        } catch (err) {
          onOutcome?.(resource, 'error', { error: err })
          throw err
        }
      })
    },

    async refresh(resource) {
      const id = resourceId(resource)
      const deps = await dependencies(resource)
      const { entry, generation } = await store.read(resource.table, id, '', { deps })
      if (entry && freshnessOf(entry.meta, now(), policy) === 'fresh') return 'fresh'
      await fill(resource, id, deps, generation, entry, 'revalidated')
      return 'refreshed'
    },

    peekFresh,
    async readFresh(resource, id, ifNoneMatch) {
      if (!redisReady()) return undefined
      const since = near?.live() ? near.cache.stamp(resource.table) : undefined
      const deps = await dependencies(resource)
      const { entry } = await store.read(resource.table, id, ifNoneMatch, { deps })
      if (!entry || freshnessOf(entry.meta, now(), policy) !== 'fresh') return undefined
      const hit = fromEntry(entry, 'hit')
      keepNear(resource, id, deps, hit, since)
      return hit
    },

    async generations(resource) {
      const deps = await dependencies(resource)
      const values = (await store.generations(resource.table, deps)).split(',')
      return new Map([[TABLE_GENERATION, values[0]!], ...deps.map((tag, i): [string, string] => [tag, values[i + 1]!])])
    },

    async store(resource, value, after) {
      const id = resourceId(resource)
      const deps = await dependencies(resource)
      // The previous entry's chunks are removed with the write; its generations do not matter.
      const [current, { entry }] = await Promise.all([store.generations(resource.table, deps), store.read(resource.table, id, '', { deps })])
      // The composite is the table's generation, then one value per dependency, in order (store.ts).
      const values = current.split(',')
      const generation = after ? [after.get(TABLE_GENERATION) ?? values[0], ...deps.map((tag, i) => after.get(tag) ?? values[i + 1])].join(',') : current
      await storeLoaded(resource, id, generation, 'miss', value, entry?.meta)
    },
  }
}
