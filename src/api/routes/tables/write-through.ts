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
 * A failure here is logged, not answered: the write itself has happened. When the cache could not learn
 * of it, the table is owed a whole invalidation, made once Redis takes it (owed-invalidations.ts).
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
  let after: Awaited<ReturnType<typeof app.cache.applyChanges>>
  try {
    after = await app.cache.applyChanges(table, [{ key, ...(result.oldImage !== undefined ? { oldImage: result.oldImage } : {}), newImage: result.newImage }])
  } catch (err) {
    forgetLater(app, request, table, err)
    return
  }
  // Without the bump's values (the whole table was invalidated instead) the next read loads the item.
  if (!after) return
  const bumped = after
  try {
    await Promise.all(
      VIEWS.map((view) =>
        app.cache.storeValue(
          itemResource(table, pk, sk, view),
          result.newImage ? itemValue(result.newImage, view) : itemNotFoundValue(table, app.config.NEGATIVE_TTL),
          bumped,
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
    if (codeOf(err) === 'DC_ERR_DYNAMO_UNAVAILABLE') await app.cache.applyChanges(table, [{ key }]).catch((e: Error) => forgetLater(app, request, table, e))
    throw err
  }
}

/** The cache did not learn of a write: logged, and the table owed a whole invalidation. */
function forgetLater(app: FastifyInstance, request: FastifyRequest, table: string, err: unknown) {
  request.log.error({ msg: 'cache.write-through.failed', table, err: (err as Error).message, owed: true })
  app.cache.oweInvalidation(table)
}
