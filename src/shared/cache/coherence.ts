import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import type { TableDescription } from '../dynamo/table-description.ts'
import { changedTags } from './dependencies.ts'
import { invalidationMessage } from './invalidation-feed.ts'
import type { NearCache } from './near-cache.ts'
import type { Bumped, CacheStore } from './store.ts'

/** An item (or a key) as DynamoDB types it. */
export type TypedItem = Record<string, AttributeValue>

/**
 * One write of one item, as the cache must learn of it. The images let the cache drop exactly the
 * index partitions the item left and joined.
 * null: known not to exist (created or deleted); undefined: unknown.
 */
export interface ItemChange {
  key: TypedItem
  oldImage?: TypedItem | null
  newImage?: TypedItem | null
}

/**
 * hard: an invalidated entry is a miss (the next read waits for DynamoDB). soft: it is served once
 * more as STALE while one refresh is queued.
 */
export type InvalidationMode = 'hard' | 'soft'

export interface InvalidationOptions {
  /** INVALIDATION_MODE when absent. */
  mode?: InvalidationMode
}

export interface CoherenceDeps {
  store: CacheStore
  /** This process's near cache, which drops the same at once (the feed tells the others). */
  near?: NearCache
  /** Invalidates a whole table (and announces it). */
  invalidateTable(table: string, mode: InvalidationMode): Promise<void>
}

/**
 * Invalidates what `changes` of `table` can change (dependencies.ts: changedTags) and announces it, in
 * one round trip to the table's slot (one script bumps and publishes). Without the table's description,
 * or with a key that names no partition, the whole table is invalidated instead. Answers the values the
 * bump left (for a write-through of the same write), or undefined after a whole-table invalidation.
 */
export async function applyChanges(
  deps: CoherenceDeps,
  table: string,
  description: TableDescription | undefined,
  changes: readonly ItemChange[],
  mode: InvalidationMode,
): Promise<Bumped | undefined> {
  const tags = description ? changedTags(description, changes) : null
  if (!tags) {
    await deps.invalidateTable(table, mode)
    deps.near?.dropTable(table)
    return undefined
  }
  const bumped = await deps.store.bump(table, tags, mode, invalidationMessage(table, tags))
  deps.near?.dropTags(table, tags)
  return bumped
}

/**
 * The change a confirmed write of a batch (or any blind write) made: a put's item is its new image, a
 * delete leaves none; the old image is unknown (the write did not read it), so every GSI is bumped whole.
 */
export function writtenChange(write: { kind: 'put' | 'delete'; attributes: TypedItem }, keyNames: readonly string[]): ItemChange {
  const key: TypedItem = {}
  for (const name of keyNames) if (Object.hasOwn(write.attributes, name)) key[name] = write.attributes[name]!
  return { key, newImage: write.kind === 'put' ? write.attributes : null }
}
