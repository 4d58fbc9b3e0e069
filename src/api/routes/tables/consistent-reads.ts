import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createTablePolicy } from '../../../shared/access.ts'
import { type CachedResource, etagOf, type LoadedValue, ttlFor } from '../../../shared/cache/index.ts'
import type { ResourceKind } from '../../../shared/cache/resources.ts'
import { readItem } from '../../../shared/dynamo/item-writes.ts'
import { keyFromParams } from '../../../shared/dynamo/key-values.ts'
import { parseFields, projectionFor } from '../../../shared/dynamo/projection.ts'
import { createResourceLoader, cursorBinding, itemNotFoundValue, itemValue } from '../../../shared/dynamo/resource-loader.ts'
import { errors } from '../../../shared/errors.ts'
import { sendCached } from '../../cached-reply.ts'

/**
 * GET /tables/:table/items/:pk?consistent=true: a ConsistentRead, never answered from the cache; the
 * answer replaces the entry the same GET without `consistent` reads.
 */
export async function consistentItemRead(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, resource: CachedResource & { table: string }) {
  const { pk, sk, fields } = resource.params
  const description = await app.cache.describe(resource.table)
  const key = keyFromParams(description, pk!, sk)
  const projection = fields === undefined ? undefined : projectionFor(description, parseFields(fields))
  // What the cache answers now (near cache, Redis, or a load): if the consistent read differs, the cache
  // was behind a write made elsewhere, and every process learns of it as of a write.
  const cached = await app.cache.read(resource, { plain: true }).catch(() => undefined)
  // Read before the load: a write that lands between the read and the store leaves the entry unseen.
  const before = await app.cache.generationsOf(resource).catch(() => undefined)
  const found = await readItem(app.gateway, resource.table, key, projection)
  const value: LoadedValue = found ? itemValue(found, resource.params.view) : itemNotFoundValue(resource.table, app.config.NEGATIVE_TTL)
  try {
    if (!cached || cached.etag !== etagOf(value.body)) {
      // A projected item is not the whole image: its index keys are unknown then.
      // Stored under what this bump left: a write by another process whose bump comes later hides it.
      // (One whose DynamoDB write and bump both fall between this read and this bump is hidden by this
      // entry until its stream record is followed or the entry expires; docs/coherence.md.)
      const after = await app.cache.applyChanges(resource.table, [{ key, ...(fields === undefined ? { newImage: found ?? null } : {}) }])
      if (after) await app.cache.storeValue(resource, value, after)
    } else if (before) {
      await app.cache.storeValue(resource, value, before)
    }
  } catch (err) {
    request.log.warn({ msg: 'cache.store.failed', table: resource.table, err: (err as Error).message })
  }
  return sendConsistent(app, request, reply, value, 'item')
}

/** Answers a consistent read as a miss made for this request (`Cache-Control: no-cache` headers). */
function sendConsistent(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, value: LoadedValue, kind: ResourceKind) {
  const result = {
    outcome: 'miss' as const,
    status: value.status,
    etag: etagOf(value.body),
    createdAt: Date.now(),
    ttl: value.ttl ?? ttlFor(kind, app.config),
    body: value.body,
    collapsed: false,
  }
  return sendCached(request, reply, result, app.config, true, kind)
}

const loaders = new WeakMap<FastifyInstance, ReturnType<typeof createResourceLoader>>()
/** A resource loader of this app's own, for consistent reads (the cache service's loads are never consistent). */
function loaderOf(app: FastifyInstance) {
  let loader = loaders.get(app)
  if (!loader) {
    const allowed = createTablePolicy(app.config.TABLES_ALLOW, app.config.TABLES_DENY)
    loader = createResourceLoader({
      gateway: app.gateway,
      cursors: app.cursors,
      tableAllowed: allowed,
      describe: (table) => app.cache.describe(table),
      negativeTtl: app.config.NEGATIVE_TTL,
    })
    loaders.set(app, loader)
  }
  return loader
}

/**
 * GET /tables/:table/items and /query with consistent=true: the page read with ConsistentRead, never
 * answered from the cache; the answer is stored as the entry the same read without `consistent` uses.
 * A global secondary index cannot be read consistently (DynamoDB refuses): 400.
 */
export async function consistentPageRead(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, resource: CachedResource & { table: string }) {
  const index = resource.params.index
  if (index !== undefined) {
    const description = await app.cache.describe(resource.table)
    if (description.indexes.some((i) => i.name === index && i.kind === 'GSI')) {
      throw new errors.DC_ERR_VALIDATION(`consistent=true cannot read the global secondary index '${index}': DynamoDB reads those eventually consistent only`)
    }
  }
  if (resource.params.cursor) app.cursors.decode(resource.params.cursor, cursorBinding(resource))
  const before = await app.cache.generationsOf(resource).catch(() => undefined)
  const value = await loaderOf(app)(resource, { consistent: true })
  try {
    if (before) await app.cache.storeValue(resource, value, before)
    // This process's near copy of the page would answer the old one until NEAR_CACHE_TTL_MS; other
    // processes' copies live at most that long (the near cache's documented lag).
    app.cache.forget(resource.table)
  } catch (err) {
    request.log.warn({ msg: 'cache.store.failed', table: resource.table, err: (err as Error).message })
  }
  return sendConsistent(app, request, reply, value, resource.kind)
}
