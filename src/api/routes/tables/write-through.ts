import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { CachedResource } from '../../../shared/cache/index.ts'
import type { AttributeMap } from '../../../shared/dynamo/item-json.ts'
import type { WriteResult } from '../../../shared/dynamo/item-writes.ts'
import { itemNotFoundValue, itemValue } from '../../../shared/dynamo/resource-loader.ts'
import { codeOf } from '../../../shared/error-classes.ts'

const VIEWS = ['document', 'typed'] as const

/** The item entry GET /tables/:table/items/:pk reads for this key and view (no fields). */
function itemResource(table: string, pk: string, sk: string | undefined, view: string): CachedResource {
  return { table, kind: 'item', params: { pk, ...(sk !== undefined ? { sk } : {}), view } }
}

/**
 * After a write: the cache learns of the change (the item, its partition, the index partitions of both
 * images, scan pages), then the item's entries under this key are replaced with the new image at once.
 * A failure here is logged, not answered: the write itself has happened.
 */
export async function writeThrough(
  app: FastifyInstance,
  request: FastifyRequest,
  table: string,
  pk: string,
  sk: string | undefined,
  key: AttributeMap,
  result: WriteResult,
) {
  try {
    const after = await app.cache.applyChanges(table, [
      { key, ...(result.oldImage !== undefined ? { oldImage: result.oldImage } : {}), newImage: result.newImage },
    ])
    // Without the bump's values (the whole table was invalidated instead) the next read loads the item.
    if (!after) return
    await Promise.all(
      VIEWS.map((view) =>
        app.cache.storeValue(
          itemResource(table, pk, sk, view),
          result.newImage ? itemValue(result.newImage, view) : itemNotFoundValue(table, app.config.NEGATIVE_TTL),
          after,
        ),
      ),
    )
  } catch (err) {
    request.log.error({ msg: 'cache.write-through.failed', table, err: (err as Error).message })
  }
}

/**
 * Runs a write; when its outcome is unknown (503: no clear answer) it may have changed the item, so the
 * cache forgets the item as for a write with unknown images (item, partition, every index, scan pages).
 */
export async function writeOrForget(app: FastifyInstance, request: FastifyRequest, table: string, key: AttributeMap, write: () => Promise<WriteResult>) {
  try {
    return await write()
  } catch (err) {
    if (codeOf(err) === 'DC_ERR_DYNAMO_UNAVAILABLE') {
      await app.cache.applyChanges(table, [{ key }]).catch((e: Error) => request.log.error({ msg: 'cache.write-through.failed', table, err: e.message }))
    }
    throw err
  }
}
