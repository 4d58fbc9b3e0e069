import { LRUCache } from 'lru-cache'

/** A cache entry as the API process keeps it in memory: what a hit answers with, and the stored gzip bytes. */
export interface NearEntry {
  status: number
  etag: string
  /** ms since epoch the value was read from DynamoDB */
  createdAt: number
  /** seconds the entry is fresh for (before STALE_THRESHOLD applies) */
  ttl: number
  /** Absent when only a 304 was ever answered from it (a revalidation reads no body from Redis). */
  gzip?: Buffer
  /** The inflated body, kept once a client without gzip has asked for it. */
  plain?: Buffer
  /** The dependency tags of the entry (dependencies.ts): dropTags of any of them forgets it. */
  deps?: readonly string[]
}

export interface NearCacheOptions {
  /** How long this process may answer from memory without asking Redis (ms); bounds cross-process lag. */
  ttlMs: number
  /** Memory budget for the bodies kept, gzip and inflated (bytes). */
  maxBytes: number
  /** How many bumped tags are remembered one by one; beyond, the oldest are forgotten conservatively. */
  maxTags?: number
  /** The clock `ttlMs` is measured on (ms); tests inject one, as they do for the read cache. */
  now?: () => number
}

/**
 * The near cache: an API process's copy of the Redis entries it served most recently, so a hot hit
 * costs no Redis round trip. It never decides freshness itself (the caller checks the entry's own
 * metadata); it only forgets: after `ttlMs`, when a table or a dependency tag of its entries is
 * invalidated (locally or through the invalidation feed), and everything at once when the feed may
 * have missed a message.
 */
export interface NearCache {
  get(table: string | null, id: string): NearEntry | undefined
  /** Taken before reading Redis; `set` ignores a value read before an invalidation that came since. */
  stamp(table: string | null): NearStamp
  set(table: string | null, id: string, entry: NearEntry, since: NearStamp): void
  /**
   * Adds the inflated body to the entry `held` (as `get` returned it), keeping the entry's age: the
   * copy is as old as the Redis read behind it. Ignored if that entry has since been replaced or dropped.
   */
  addPlain(table: string | null, id: string, held: NearEntry, plain: Buffer): void
  /** Forgets one table's entries (null: the table list). O(1): entries of an older epoch are ignored. */
  dropTable(table: string | null): void
  /** Forgets the entries of a table that depend on any of these tags. O(tags). */
  dropTags(table: string | null, tags: readonly string[]): void
  dropAll(): void
}

export interface NearStamp {
  readonly epoch: number
  readonly allEpoch: number
  /** The tag sequence: a tag dropped after this makes a value read before it too old to keep. */
  readonly seq: number
}

interface Held extends NearEntry {
  /** The table's epoch when stored; a later dropTable makes the entry invisible. */
  epoch: number
  /** The global epoch when stored; dropAll makes it invisible. */
  allEpoch: number
  /** The tag sequence when read: a later dropTags of one of its deps makes it invisible. */
  seq: number
}

/** Entries are small next to this, but a budget of bytes must also account for keys and objects. */
const OVERHEAD_BYTES = 256
const sizeOf = (entry: NearEntry) => (entry.gzip?.length ?? 0) + (entry.plain?.length ?? 0) + OVERHEAD_BYTES

export function createNearCache({ ttlMs, maxBytes, now, maxTags = 100_000 }: NearCacheOptions): NearCache {
  const entries = new LRUCache<string, Held>({
    maxSize: maxBytes,
    sizeCalculation: sizeOf,
    ttl: ttlMs,
    // Expiry is checked on read; no timers per entry.
    ttlAutopurge: false,
    // An injected clock is read on every check (lru-cache otherwise caches perf.now() for 1 ms).
    ...(now ? { perf: { now }, ttlResolution: 0 } : {}),
  })
  const epochs = new Map<string | null, number>()
  let allEpoch = 0
  // Each dropped tag remembers the sequence number of its last drop. A tag forgotten (over maxTags)
  // raises the floor every unknown tag reads as: entries older than it then count as dropped.
  let seq = 0
  let floor = 0
  const tagSeqs = new LRUCache<string, number>({
    max: maxTags,
    dispose: (value, _key, reason) => {
      if (reason === 'evict') floor = Math.max(floor, value)
    },
  })
  const keyOf = (table: string | null, id: string) => `${table ?? ''}\u0000${id}`
  const droppedSince = (table: string | null, deps: readonly string[] | undefined, since: number) =>
    deps?.some((tag) => (tagSeqs.get(keyOf(table, tag)) ?? floor) > since) === true

  return {
    get(table, id) {
      const key = keyOf(table, id)
      const held = entries.get(key)
      if (!held) return undefined
      if (held.allEpoch !== allEpoch || held.epoch !== (epochs.get(table) ?? 0) || droppedSince(table, held.deps, held.seq)) {
        entries.delete(key)
        return undefined
      }
      return held
    },
    stamp(table) {
      return { epoch: epochs.get(table) ?? 0, allEpoch, seq }
    },
    set(table, id, entry, since) {
      if (since.allEpoch !== allEpoch || since.epoch !== (epochs.get(table) ?? 0) || droppedSince(table, entry.deps, since.seq)) return
      // An entry larger than the whole budget is not kept.
      if (sizeOf(entry) > maxBytes) return
      entries.set(keyOf(table, id), { ...entry, epoch: since.epoch, allEpoch, seq: since.seq })
    },
    addPlain(table, id, held, plain) {
      const key = keyOf(table, id)
      const current = entries.get(key)
      if (current === undefined || current !== held) return
      const withPlain = { ...current, plain }
      // Over the whole budget lru-cache would drop the entry, and gzip clients would lose their hits too.
      if (sizeOf(withPlain) > maxBytes) return
      entries.set(key, withPlain, { noUpdateTTL: true })
    },
    dropTable(table) {
      epochs.set(table, (epochs.get(table) ?? 0) + 1)
    },
    dropTags(table, tags) {
      seq++
      for (const tag of tags) tagSeqs.set(keyOf(table, tag), seq)
    },
    dropAll() {
      allEpoch++
      entries.clear()
    },
  }
}
