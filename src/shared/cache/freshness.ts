/**
 * When a cached value is fresh, stale or expired: the one place that knows STALE_THRESHOLD. The read
 * path decides what to do with an entry from this, and the HTTP reply derives its Cache-Control and
 * Cache-Status from the same numbers, so the two cannot disagree.
 *
 *   0 ........ ttl x threshold ........ ttl ........
 *   |   fresh   |        stale         |  expired
 *   (hit)        (served, refresh queued) (loaded again; stale-if-error on failure)
 */
export type Freshness = 'fresh' | 'stale' | 'expired'

/** The part of an entry's metadata freshness depends on. */
export interface Dated {
  /** ms since epoch the value was read from DynamoDB */
  createdAt: number
  /** seconds the entry lives before it expires */
  ttl: number
}

export interface FreshnessPolicy {
  /** STALE_THRESHOLD: the share of the ttl an entry is fresh for. */
  staleThreshold: number
}

/** ms an entry is fresh for after it was read. */
export const freshForMs = (ttl: number, policy: FreshnessPolicy) => ttl * policy.staleThreshold * 1000

export function freshnessOf(entry: Dated, now: number, policy: FreshnessPolicy): Freshness {
  const age = now - entry.createdAt
  if (age < freshForMs(entry.ttl, policy)) return 'fresh'
  if (age < entry.ttl * 1000) return 'stale'
  return 'expired'
}

/** Whole seconds an entry stays fresh from `now` (negative once it is stale), for Cache-Status `ttl=`. */
export const freshSecondsLeft = (entry: Dated, now: number, policy: FreshnessPolicy) =>
  Math.floor((entry.createdAt + freshForMs(entry.ttl, policy) - now) / 1000)

/** Seconds of the ttl past the fresh part, for Cache-Control `stale-while-revalidate=`. */
export const staleWindowSeconds = (ttl: number, policy: FreshnessPolicy) => Math.max(0, Math.ceil(ttl * (1 - policy.staleThreshold)))
