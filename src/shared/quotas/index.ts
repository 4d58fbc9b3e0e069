import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { DEFAULT_TENANT, type Principal } from '../access.ts'
import { tableOfBatchId } from '../batches/batch-id.ts'
import type { Config } from '../config.ts'
import { errors } from '../errors.ts'
import { pipelineByTag } from '../redis/index.ts'
import type { RedisKeys } from '../redis/keys.ts'
import { createSlotPool, type Refusal, type SlotPool } from './slots.ts'

export { createSlotPool, type Refusal, type SlotPool } from './slots.ts'

/** A slot taken before its object exists: held this long at most, then it must have been renamed. */
export const PENDING_LEASE_MS = 120_000
/** Upper bound on how long an export or a batch counts, should its record never reach an end. */
export const JOB_LEASE_MS = 24 * 3600_000
/** An open stream's lease, renewed every third of it while the stream lives. */
export const STREAM_LEASE_MS = 60_000

const LIVE_EXPORT = new Set(['queued', 'processing'])
const LIVE_BATCH = new Set(['queued', 'processing', 'retrying'])
const PENDING = 'pending:'

type Caller = Pick<Principal, 'id' | 'tenant'> | undefined

/** An open stream's slot; `release` is idempotent. */
export interface StreamSlot {
  release(): void
}

/**
 * Per-tenant and per-key limits, counted fleet-wide in Redis (see slots.ts): concurrent exports and
 * unfinished batches (count and bytes) per tenant, open event streams per API key. Exports and batches
 * are counted from their own records when a tenant reaches a limit, so a slot is free as soon as its
 * export or batch finished, failed, was cancelled or removed, whoever ended it.
 */
export interface Quotas {
  /** Runs `create` (which stores the export) only if the caller's tenant may start one more export. */
  admitExport<T>(caller: Caller, id: string, create: () => Promise<T>): Promise<T>
  /** Runs `create` (which stores the batch) only if the tenant may queue one more batch of `bytes`. */
  admitBatch<T extends { id: string; created: boolean }>(caller: Caller, bytes: number, create: () => Promise<T>): Promise<T>
  /** Takes one of the caller's stream slots; throws DC_ERR_STREAM_QUOTA at the limit. */
  openStream(caller: Caller): Promise<StreamSlot>
  /** Ends the lease renewals of open streams (their slots are released). */
  close(): Promise<void>
}

export interface QuotasOptions {
  redis: Redis
  keys: RedisKeys
  config: Pick<Config, 'TENANT_EXPORTS_MAX' | 'TENANT_BATCHES_MAX' | 'TENANT_BATCHES_MB' | 'KEY_STREAMS_MAX'>
  now?: () => number
  streamLeaseMs?: number
}

const tenantOf = (caller: Caller) => caller?.tenant ?? DEFAULT_TENANT

export function createQuotas({ redis, keys, config, now = Date.now, streamLeaseMs = STREAM_LEASE_MS }: QuotasOptions): Quotas {
  const exportSlots = createSlotPool({ redis, keys, kind: 'export', now })
  const batchSlots = createSlotPool({ redis, keys, kind: 'batch', now })
  const streamSlots = createSlotPool({ redis, keys, kind: 'stream', now })
  const open = new Set<StreamSlot>()

  /** Statuses of the named records (null when gone), read from the stores themselves. */
  async function statuses(recordKeys: Array<string | undefined>): Promise<Array<string | null>> {
    const present = recordKeys.filter((k): k is string => k !== undefined)
    const replies = await pipelineByTag(
      redis,
      present.map((key) => ({ key, add: (p) => p.hget(key, 'status') })),
    )
    let i = 0
    return recordKeys.map((k) => (k === undefined ? null : ((replies[i++]?.[1] as string | null) ?? null)))
  }

  /** Frees the slots of an owner whose objects have ended; true when any was freed. */
  async function reconcile(pool: SlotPool, owner: string, recordKey: (id: string) => string | undefined, live: Set<string>): Promise<boolean> {
    const held = (await pool.members(owner)).filter((m) => !m.member.startsWith(PENDING))
    if (held.length === 0) return false
    const found = await statuses(held.map((m) => recordKey(m.member)))
    const ended = held.filter((_, i) => !live.has(found[i] ?? '')).map((m) => m.member)
    await pool.release(owner, ...ended)
    return ended.length > 0
  }

  /** Acquire, and at a limit free the slots of ended objects and try once more. */
  async function acquireCounted(
    pool: SlotPool,
    owner: string,
    member: string,
    limits: { max: number; weight?: number; maxWeight?: number },
    reconcileWith: () => Promise<boolean>,
  ): Promise<Refusal | undefined> {
    const opts = { leaseMs: PENDING_LEASE_MS, ...limits }
    const refusal = await pool.acquire(owner, member, opts)
    if (!refusal || !(await reconcileWith())) return refusal
    return pool.acquire(owner, member, opts)
  }

  /** Holds a pending slot while `create` runs, then names it after what was created (or frees it). */
  async function admit<T>(pool: SlotPool, owner: string, pending: string, create: () => Promise<T>, createdId: (result: T) => string | undefined): Promise<T> {
    let result: T
    try {
      result = await create()
    } catch (err) {
      await pool.release(owner, pending).catch(() => {})
      throw err
    }
    const id = createdId(result)
    if (id === undefined) await pool.release(owner, pending)
    else await pool.renew(owner, pending, JOB_LEASE_MS, id)
    return result
  }

  const exportKey = (id: string) => keys.exportRecord(id)
  const batchKey = (id: string) => {
    const table = tableOfBatchId(id)
    return table === undefined ? undefined : keys.batch(table, id)
  }

  return {
    async admitExport(caller, id, create) {
      const tenant = tenantOf(caller)
      const pending = `${PENDING}${id}`
      const refusal = await acquireCounted(exportSlots, tenant, pending, { max: config.TENANT_EXPORTS_MAX }, () =>
        reconcile(exportSlots, tenant, exportKey, LIVE_EXPORT),
      )
      if (refusal) throw new errors.DC_ERR_EXPORT_QUOTA(config.TENANT_EXPORTS_MAX)
      return admit(exportSlots, tenant, pending, create, () => id)
    },

    async admitBatch(caller, bytes, create) {
      const tenant = tenantOf(caller)
      const pending = `${PENDING}${randomUUID()}`
      const maxWeight = config.TENANT_BATCHES_MB * 1024 * 1024
      const refusal = await acquireCounted(batchSlots, tenant, pending, { max: config.TENANT_BATCHES_MAX, weight: bytes, maxWeight }, () =>
        reconcile(batchSlots, tenant, batchKey, LIVE_BATCH),
      )
      if (refusal?.limit === 'count') {
        throw new errors.DC_ERR_BATCH_QUOTA(
          `This tenant already has ${config.TENANT_BATCHES_MAX} unfinished batches, the most it may have at once; retry when one finishes`,
        )
      }
      if (refusal) {
        throw new errors.DC_ERR_BATCH_QUOTA(
          `This batch (${bytes} bytes stored) would take this tenant's unfinished batches past ${config.TENANT_BATCHES_MB} MB (${refusal.total} bytes held); retry when one finishes`,
        )
      }
      // An Idempotency-Key replay creates nothing: its pending slot is freed.
      return admit(batchSlots, tenant, pending, create, (r) => (r.created ? r.id : undefined))
    },

    async openStream(caller) {
      const owner = caller?.id ?? 'anonymous'
      const member = randomUUID()
      const refusal = await streamSlots.acquire(owner, member, { leaseMs: streamLeaseMs, max: config.KEY_STREAMS_MAX })
      if (refusal) throw new errors.DC_ERR_STREAM_QUOTA(config.KEY_STREAMS_MAX)
      const timer = setInterval(
        () => {
          streamSlots.renew(owner, member, streamLeaseMs).catch(() => {})
        },
        Math.max(10, Math.floor(streamLeaseMs / 3)),
      )
      timer.unref()
      let released = false
      const slot: StreamSlot = {
        release() {
          if (released) return
          released = true
          clearInterval(timer)
          open.delete(slot)
          // Best effort: should Redis be down, the lease ends the slot anyway.
          streamSlots.release(owner, member).catch(() => {})
        },
      }
      open.add(slot)
      return slot
    },

    async close() {
      for (const slot of open) slot.release()
    },
  }
}
