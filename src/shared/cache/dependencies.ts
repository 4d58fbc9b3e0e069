import { createHash } from 'node:crypto'
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { canonicalNumber, keyFromParams, toKeyAttributeValue } from '../dynamo/key-values.ts'
import type { TableDescription } from '../dynamo/table-description.ts'
import type { ItemChange, TypedItem } from './coherence.ts'
import type { CachedResource } from './resources.ts'

/**
 * Dependency tags: the names of the generations an entry depends on besides its table's own, each a
 * counter under the table's hash tag (keys.dependency). A read and a write must name a partition the
 * same way, so both go through {@link canonicalValue}: the read side types URL parameters by the key
 * schema, the write side has AttributeValues. Any bump of the table's own generation drops everything.
 */

/** Scan pages (`items`): every write of the table. */
export const DATA = 'data'
/** Table details and the table list: the table's definition only. */
export const DEFINITION = 'def'

const INLINE_MAX = 64
// Tags go into Redis keys and the purge job's patterns: anything but plain characters is hashed.
const PLAIN = /^[\w.:=+/@-]*$/
const digest = (text: string) => createHash('sha1').update(text).digest('base64url').slice(0, 22)
const compact = (text: string) => (text.length <= INLINE_MAX && PLAIN.test(text) ? text : `h:${digest(text)}`)

/** One text per key value, the same however it was written: `S:<value>`, `N:<canonical number>`, `B:<base64>`. */
export function canonicalValue(value: AttributeValue | undefined): string | undefined {
  if (value?.S !== undefined) return `S:${value.S}`
  if (value?.N !== undefined) {
    try {
      return `N:${canonicalNumber(value.N)}`
    } catch {
      return `N:${value.N}`
    }
  }
  if (value?.B !== undefined) return `B:${Buffer.from(value.B).toString('base64')}`
  return undefined
}

export const itemTag = (pk: string, sk: string | undefined) => `i:${digest(JSON.stringify([pk, sk ?? null]))}`
export const partitionTag = (pk: string) => `p:${compact(pk)}`
export const indexTag = (index: string) => `x:${index}`
export const indexPartitionTag = (index: string, pk: string) => `x:${index}:${compact(pk)}`

/**
 * What an entry of `resource` depends on. `description` is the table's (undefined when it cannot be
 * had: the table is missing or hidden); without it, or for parameters that do not fit the key schema,
 * an item or query depends on the table's data, which every write bumps: never too little.
 */
export function dependenciesOf(resource: CachedResource, description: TableDescription | undefined): string[] {
  const { kind, params } = resource
  if (kind === 'tables' || kind === 'details') return [DEFINITION]
  if (kind === 'items' || !description || params.pk === undefined) return [DATA]
  try {
    if (kind === 'item') {
      const key = keyFromParams(description, params.pk, params.sk)
      const { partition, sort } = description.key
      return [itemTag(canonicalValue(key[partition.name])!, sort ? canonicalValue(key[sort.name]) : undefined)]
    }
    const index = params.index === undefined ? undefined : description.indexes.find((i) => i.name === params.index)
    if (params.index !== undefined && !index) return [DATA]
    // An LSI shares the table's partition key: a write of the partition is all that changes its pages.
    if (!index || index.kind === 'LSI') return [partitionTag(canonicalValue(toKeyAttributeValue(description.key.partition, params.pk))!)]
    return [indexTag(index.name), indexPartitionTag(index.name, canonicalValue(toKeyAttributeValue(index.key.partition, params.pk))!)]
  } catch {
    return [DATA]
  }
}

/**
 * What writes of items change (docs/coherence.md): each item, its partition, the GSI partitions of its
 * old and new image (the whole GSI when an image is unknown) and the scan pages. Null when a key does not
 * even name its partition: the caller then invalidates the whole table.
 */
export function changedTags(description: TableDescription, changes: readonly ItemChange[]): string[] | null {
  const tags = new Set<string>([DATA])
  const { partition, sort } = description.key
  const gsis = description.indexes.filter((i) => i.kind === 'GSI')
  for (const change of changes) {
    const pk = canonicalValue(change.key[partition.name])
    const sk = sort ? canonicalValue(change.key[sort.name]) : undefined
    if (pk === undefined || (sort && sk === undefined)) return null
    tags.add(itemTag(pk, sk))
    tags.add(partitionTag(pk))
    for (const gsi of gsis) {
      for (const image of [change.oldImage, change.newImage]) {
        if (image === null) continue
        if (image === undefined) {
          tags.add(indexTag(gsi.name))
          continue
        }
        // An item without the index's key attribute is not in the (sparse) index.
        const indexed = canonicalValue(gsiValue(image, gsi.key.partition.name))
        if (indexed !== undefined) tags.add(indexPartitionTag(gsi.name, indexed))
      }
    }
  }
  return [...tags]
}

const gsiValue = (image: TypedItem, name: string): AttributeValue | undefined => (Object.hasOwn(image, name) ? image[name] : undefined)
