import { AsyncLocalStorage } from 'node:async_hooks'
import type { AttributeMap } from './item-json.ts'

/** Reads many keys of one table at once (BatchGetItem); undefined where no item exists. */
export type ItemFetcher = (keys: AttributeMap[]) => Promise<Array<AttributeMap | undefined>>

interface Pending {
  key: AttributeMap
  fetch: ItemFetcher
  resolve(item: AttributeMap | undefined): void
  reject(err: unknown): void
}

/** How long loads wait for the batch's other reads at most (see ItemBatch). */
export const ITEM_BATCH_MAX_WAIT_MS = 1000

/**
 * Gathers the item loads of one batch-get into one BatchGetItem. Each of the batch's `size` reads goes
 * through the read cache on its own; a read that misses calls `load` (through the item loader), one that
 * does not is `settled`. Once every read has done one or the other, the loads waiting are fetched
 * together, so the call holds exactly the keys no entry answered, whatever the timing. A read joined to
 * another caller's load of the same entry does neither until that load ends; when that caller is a second
 * batch waiting in turn on this one, only the `maxWaitMs` bound breaks the cycle: both then fetch what
 * they hold.
 */
export class ItemBatch {
  readonly #size: number
  readonly #maxWaitMs: number
  readonly #pending = new Map<number, Pending>()
  readonly #settled = new Set<number>()
  #fired = false
  #timer: NodeJS.Timeout | undefined

  constructor(size: number, maxWaitMs = ITEM_BATCH_MAX_WAIT_MS) {
    this.#size = size
    this.#maxWaitMs = maxWaitMs
  }

  /** The item at read `index`, fetched with the batch's others; undefined when it cannot join (already fired). */
  load(index: number, key: AttributeMap, fetch: ItemFetcher): Promise<AttributeMap | undefined> | undefined {
    if (this.#fired || this.#settled.has(index) || this.#pending.has(index)) return undefined
    const item = new Promise<AttributeMap | undefined>((resolve, reject) => this.#pending.set(index, { key, fetch, resolve, reject }))
    this.#timer ??= setTimeout(() => this.#fire(), this.#maxWaitMs)
    this.#maybeFire()
    return item
  }

  /** Read `index` finished (or failed) without needing a load of its own; nothing if it had one. */
  settled(index: number): void {
    if (this.#pending.has(index)) return
    this.#settled.add(index)
    this.#maybeFire()
  }

  #maybeFire() {
    if (this.#pending.size + this.#settled.size >= this.#size) this.#fire()
  }

  #fire() {
    if (this.#fired || this.#pending.size === 0) return
    this.#fired = true
    clearTimeout(this.#timer)
    const waiting = [...this.#pending.values()]
    waiting[0]!.fetch(waiting.map((p) => p.key)).then(
      (items) => {
        for (const [i, p] of waiting.entries()) p.resolve(items[i])
      },
      (err) => {
        for (const p of waiting) p.reject(err)
      },
    )
  }
}

const current = new AsyncLocalStorage<{ batch: ItemBatch; index: number }>()

/** Runs one read of a batch: item loads under it join the batch as read `index`. */
export function runInItemBatch<T>(batch: ItemBatch, index: number, read: () => Promise<T>): Promise<T> {
  return current.run({ batch, index }, () => read().finally(() => batch.settled(index)))
}

/** For the item loader: the item from the batch this read belongs to, or undefined outside a batch. */
export function loadThroughBatch(key: AttributeMap, fetch: ItemFetcher): Promise<AttributeMap | undefined> | undefined {
  const at = current.getStore()
  return at?.batch.load(at.index, key, fetch)
}
