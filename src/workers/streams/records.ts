import type { _Record } from '@aws-sdk/client-dynamodb-streams'
import type { ItemChange, TypedItem } from '../../shared/cache/index.ts'

/**
 * A stream record as the change the cache applies, with what the view type tells: the images it
 * carries, null where the event says the item did not exist (INSERT: before; REMOVE: after), unknown
 * (undefined) otherwise, so KEYS_ONLY bumps the item, its partition and every index.
 */
export function changeOf(record: _Record): ItemChange {
  const d = record.dynamodb ?? {}
  // The Streams client types attribute values separately; the wire shape is DynamoDB's own.
  const oldImage = d.OldImage ? (d.OldImage as TypedItem) : record.eventName === 'INSERT' ? null : undefined
  const newImage = d.NewImage ? (d.NewImage as TypedItem) : record.eventName === 'REMOVE' ? null : undefined
  return {
    key: (d.Keys ?? {}) as TypedItem,
    ...(oldImage !== undefined ? { oldImage } : {}),
    ...(newImage !== undefined ? { newImage } : {}),
  }
}
