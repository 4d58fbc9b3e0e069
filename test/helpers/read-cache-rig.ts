import { gunzipSync } from 'node:zlib'
import { createNearCache, type NearCache } from '../../src/shared/cache/near-cache.ts'
import { type CacheOutcome, createReadCache, type LoadedValue, type ReadCacheOptions } from '../../src/shared/cache/read-cache.ts'
import type { CachedResource } from '../../src/shared/cache/resources.ts'
import type { CacheStore } from '../../src/shared/cache/store.ts'
import { loadConfig } from '../../src/shared/config.ts'
import { createMemoryStore } from './memory-store.ts'

/**
 * A read cache on a fake clock and an in-memory store, for the unit tests of the cache core
 * (test/shared/cache). Nothing here waits on real time: the clock moves only when a test moves it.
 */

/** Fixed numbers the tests reason with: items are fresh 60 s, stale from 45 s, and a waiter polls 4 s. */
export const config = loadConfig(
  {
    REDIS_URL: 'redis://127.0.0.1:1',
    CURSOR_SECRET: 'unit-test-cursor-secret-0001',
    TABLE_ITEMS_TTL: '60',
    STALE_THRESHOLD: '0.75',
    DYNAMO_TIMEOUT_MS: '3000',
  },
  'worker',
)
export const TTL_MS = 60_000
export const STALE_AT_MS = 45_000
/** read-cache.ts: a waiter polls this long for another process's fill, then loads itself. */
export const LOCK_WAIT_MS = config.DYNAMO_TIMEOUT_MS + 1000
/** read-cache.ts: how long a fill lock lives if its holder never releases it. */
export const LOCK_TTL_MS = config.DYNAMO_TIMEOUT_MS * 2 + 1000

export const items = (table = 'orders', limit = '7'): CachedResource => ({
  table,
  kind: 'items',
  params: { limit },
})

export function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance(ms: number) {
      t += ms
    },
    set(ms: number) {
      t = ms
    },
    start,
  }
}
export type FakeClock = ReturnType<typeof fakeClock>

/** One turn of the event loop: every pending microtask and I/O callback has run. */
export const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Turns the event loop until `cond` holds (a few hundred turns at most: no real waiting). */
export async function until(what: string, cond: () => boolean, turns = 500): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return
    await turn()
  }
  throw new Error(`never happened: ${what}`)
}

/**
 * A DynamoDB stand-in: counts loads, answers `{ table, n }` (n = the load's number), and can hold
 * every load until `release()` or fail them with a chosen error.
 */
export function scriptedLoader() {
  const calls: CachedResource[] = []
  let gate: Promise<void> | undefined
  let open: (() => void) | undefined
  let failure: unknown
  let ttl: number | undefined
  const load = async (resource: CachedResource): Promise<LoadedValue> => {
    calls.push(resource)
    const n = calls.length
    if (gate) await gate
    if (failure) throw failure
    return {
      status: 200,
      body: Buffer.from(JSON.stringify({ table: resource.table, n })),
      ...(ttl ? { ttl } : {}),
    }
  }
  return {
    load,
    calls,
    get count() {
      return calls.length
    },
    /** Loads from now on wait for `release()`. */
    hold() {
      gate = new Promise<void>((resolve) => {
        open = resolve
      })
    },
    release() {
      open?.()
      gate = undefined
    },
    failWith(err: unknown) {
      failure = err
    },
    succeed() {
      failure = undefined
    },
    /** Answers carry this TTL (seconds), as negative entries do. */
    answerTtl(seconds: number | undefined) {
      ttl = seconds
    },
  }
}

/** The body a result answers with, whichever form it carries. */
export const bodyOf = (r: { body?: Buffer; gzip?: Buffer }) => JSON.parse((r.body ?? gunzipSync(r.gzip!)).toString())

export interface RigOptions {
  clock?: FakeClock
  memory?: ReturnType<typeof createMemoryStore>
  /** Wraps the store the read cache sees (to watch or interfere with its calls). */
  wrap?: (store: CacheStore) => CacheStore
  /** The dependency tags of each resource's entry (dependencies.ts); none by default. */
  dependencies?: ReadCacheOptions['dependencies']
  /** Give the read cache a live near cache (ttl on the fake clock). */
  near?: { ttlMs?: number; maxBytes?: number; live?: () => boolean } | NearCache
  redisReady?: () => boolean
  loader?: ReturnType<typeof scriptedLoader>
  /**
   * Whether waiting for another process's fill moves the clock (default true). Pass false when the
   * holder does write: its load (gzip on the thread pool) takes real time, which the waiter's fake
   * clock must not outrun.
   */
  waitMovesClock?: boolean
}

/** One read cache (one API process) with everything it talks to exposed to the test. */
export function rig(options: RigOptions = {}) {
  const clock = options.clock ?? fakeClock()
  const memory = options.memory ?? createMemoryStore({ now: clock.now })
  const loader = options.loader ?? scriptedLoader()
  const refreshes: Array<{ resource: CachedResource; id: string }> = []
  const outcomes: Array<CacheOutcome | 'error'> = []
  const warnings: object[] = []
  /** Every wait for another process's fill: it moves the fake clock, then yields one turn. */
  const sleeps: number[] = []
  const sleep = async (ms: number) => {
    sleeps.push(ms)
    if (options.waitMovesClock !== false) clock.advance(ms)
    await turn()
  }
  const nearOption = options.near
  const nearCache =
    nearOption === undefined
      ? undefined
      : 'stamp' in nearOption
        ? nearOption
        : createNearCache({
            ttlMs: nearOption.ttlMs ?? 1000,
            maxBytes: nearOption.maxBytes ?? 1 << 20,
            now: clock.now,
          })
  const live = nearOption && !('stamp' in nearOption) && nearOption.live ? nearOption.live : () => true
  const readCacheOptions: ReadCacheOptions = {
    config,
    store: options.wrap ? options.wrap(memory.store) : memory.store,
    load: loader.load,
    scheduleRefresh: (resource, id) => refreshes.push({ resource, id }),
    redisReady: options.redisReady ?? (() => true),
    onOutcome: (_resource, outcome) => outcomes.push(outcome),
    logger: { info() {}, warn: (obj) => warnings.push(obj), error() {} },
    now: clock.now,
    sleep,
    ...(nearCache ? { near: { cache: nearCache, live } } : {}),
    ...(options.dependencies ? { dependencies: options.dependencies } : {}),
  }
  const cache = createReadCache(readCacheOptions)
  return { cache, clock, memory, loader, refreshes, outcomes, warnings, sleeps, near: nearCache }
}
