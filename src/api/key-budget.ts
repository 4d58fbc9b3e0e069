import type { IncomingMessage } from 'node:http'

/** The Redis command a budget needs (an ioredis client or cluster with the scripts defined). */
export interface BudgetRedis {
  /** The dcRateLease script: adds `tokens` to the counter (made with the window's expiry); [counter, its PTTL]. */
  dcRateLease(counter: string, windowMs: number, tokens: number): Promise<[number, number]>
  readonly status: string
}

export interface BudgetOptions {
  /** Requests per window per key, fleet-wide. */
  limit: number
  windowMs: number
  /** Redis key of a client's counter; it expires `windowMs` after the window's first lease. */
  counterKey(client: string): string
  /** Tokens a process takes from Redis at once; defaults to limit / 20, between 1 and 1,000. */
  lease?: number
  now?: () => number
}

/** What a request may do, and what to tell the client (RateLimit-* headers). */
export interface BudgetAnswer {
  allowed: boolean
  limit: number
  /** Fleet-wide, as this process knows it: requests left in the window. */
  remaining: number
  /** Seconds until the window ends (RateLimit-Reset, and Retry-After when refused). */
  resetS: number
}

interface Lease {
  /** When the window ends (this process's clock, from the counter's PTTL); 0 before the first lease. */
  resetAt: number
  /** Tokens this process holds for the window. */
  tokens: number
  /** The fleet's counter after this process's last lease (tokens held included). */
  fleet: number
  /** The fleet has nothing left this window: refuse without asking Redis again. */
  exhausted: boolean
  /** The lease in flight: resolves true once taken, false when Redis failed. */
  pending?: Promise<boolean>
}

/** Clients tracked per process; the oldest are dropped beyond this (their unused tokens with them). */
const MAX_CLIENTS = 10_000

/**
 * A per-key fixed-window rate limit, fleet-wide through one Redis counter per key and window, without a
 * Redis round trip per request: each process takes tokens from the counter in leases (INCRBY) and spends
 * them locally, taking the next lease in the background when half of one is left. The counter never
 * grants more than `limit` in a window, so the fleet never admits more than the limit; what a process
 * holds and does not spend is lost to the others, so the fleet may refuse up to 1.5 leases per other
 * process before the limit is reached, and leases shrink to a quarter of what is left near the limit.
 * While Redis is not ready, or a lease fails, requests are allowed.
 */
export function createKeyBudget(redis: BudgetRedis, options: BudgetOptions) {
  const { limit, windowMs, counterKey } = options
  const lease = options.lease ?? Math.max(1, Math.min(1000, Math.ceil(limit / 20)))
  const now = options.now ?? Date.now
  const clients = new Map<string, Lease>()

  // Leases shrink to a quarter of what the fleet has left near the limit, so little is held unspent then.
  const sizeOf = (state: Lease) => Math.max(1, Math.min(lease, Math.floor((limit - state.fleet) / 4)))

  async function take(client: string, state: Lease): Promise<boolean> {
    const key = counterKey(client)
    const size = sizeOf(state)
    try {
      // The window starts with the fleet's first lease (as @fastify/rate-limit's store does): no clock
      // alignment, and every process learns its end from the counter's own expiry.
      const [total, ttl] = (await redis.dcRateLease(key, windowMs, size)).map(Number) as [number, number]
      if (state.resetAt === 0) state.resetAt = now() + (ttl > 0 ? ttl : windowMs)
      // Only what is left under the limit is granted: the counter may pass it, the fleet never does.
      const granted = Math.max(0, Math.min(size, limit - (total - size)))
      state.tokens += granted
      state.fleet = Math.max(state.fleet, Math.min(limit, total))
      if (granted < size || total >= limit) state.exhausted = true
      return true
    } catch {
      // Redis slow or down: not a reason to refuse (as before); the next request tries again.
      return false
    }
  }

  function stateOf(client: string, t: number): Lease {
    let state = clients.get(client)
    if (!state || (state.resetAt !== 0 && t >= state.resetAt)) {
      if (state) clients.delete(client)
      else if (clients.size >= MAX_CLIENTS) clients.delete(clients.keys().next().value!)
      state = { resetAt: 0, tokens: 0, fleet: 0, exhausted: false }
      clients.set(client, state)
    }
    return state
  }

  function answer(state: Lease, allowed: boolean, t: number): BudgetAnswer {
    const remaining = state.exhausted && state.tokens === 0 ? 0 : Math.max(0, limit - state.fleet + state.tokens)
    const resetMs = state.resetAt === 0 ? windowMs : state.resetAt - t
    return { allowed, limit, remaining, resetS: Math.max(1, Math.ceil(resetMs / 1000)) }
  }

  function refill(client: string, state: Lease): Promise<boolean> {
    state.pending ??= take(client, state).finally(() => {
      state.pending = undefined
    })
    return state.pending
  }

  // Waits for leases until it gets a token or the fleet is exhausted (several requests may wait on one).
  async function spend(client: string, state: Lease): Promise<BudgetAnswer> {
    for (;;) {
      if (state.tokens > 0) {
        state.tokens--
        return answer(state, true, now())
      }
      if (state.exhausted) return answer(state, false, now())
      if (!(await refill(client, state))) return answer(state, true, now())
    }
  }

  return {
    lease,
    /**
     * Spends one token of `client`; a promise only when this process holds none and must ask Redis
     * (the first request of a key in a window, or a burst past the background refill), else synchronous.
     */
    consume(client: string): BudgetAnswer | Promise<BudgetAnswer> | undefined {
      if (redis.status !== 'ready') return undefined
      const t = now()
      const state = stateOf(client, t)
      if (state.tokens > 0) {
        state.tokens--
        if (!state.exhausted && state.tokens < sizeOf(state) / 2) void refill(client, state)
        return answer(state, true, t)
      }
      if (state.exhausted) return answer(state, false, t)
      return spend(client, state)
    },
    /**
     * Spends a token of `client` only if this process holds one for the current window: no Redis, no
     * promise, nothing changed otherwise (the hit lane asks this, and leaves every other case to `consume`).
     */
    spendHeld(client: string): BudgetAnswer | undefined {
      if (redis.status !== 'ready') return undefined
      const state = clients.get(client)
      if (state === undefined || state.tokens <= 0) return undefined
      const t = now()
      if (state.resetAt !== 0 && t >= state.resetAt) return undefined
      state.tokens--
      if (!state.exhausted && state.tokens < sizeOf(state) / 2) void refill(client, state)
      return answer(state, true, t)
    },
  }
}

export type KeyBudget = ReturnType<typeof createKeyBudget>

/** Tokens the hit lane spent for requests it then handed to Fastify: the rate limit counts them once. */
const charged = new WeakMap<IncomingMessage, BudgetAnswer>()

/** Records that this request's token is spent already (hit-lane.ts, before it hands the request on). */
export const chargeRequest = (req: IncomingMessage, answer: BudgetAnswer) => charged.set(req, answer)

/** The answer of a token spent for this request already, if any (rate-limit.ts). */
export const chargedAnswer = (req: IncomingMessage): BudgetAnswer | undefined => charged.get(req)
