import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { keyNames, keyString } from '../../../shared/batches/operations.ts'
import type { ItemChange } from '../../../shared/cache/coherence.ts'
import { DocumentProblem, documentMap } from '../../../shared/dynamo/document-values.ts'
import { type AttributeMap, typedJsonToAttributeValues } from '../../../shared/dynamo/item-json.ts'
import type { WriteFormat } from '../../../shared/dynamo/item-put.ts'
import type { TableDescription } from '../../../shared/dynamo/table-description.ts'
import { codeOf } from '../../../shared/error-classes.ts'
import { errors } from '../../../shared/errors.ts'
import { useLosslessJson } from '../../lossless-body.ts'
import { TableParams } from '../schemas.ts'
import { InvalidationAnswer, InvalidationBody, writeErrors } from './item-write-schemas.ts'

interface RawChange {
  key: unknown
  oldImage?: unknown
  newImage?: unknown
}

function convert(json: unknown, format: WriteFormat, at: string): AttributeMap {
  try {
    return format === 'typed' ? typedJsonToAttributeValues(json) : documentMap(json)
  } catch (err) {
    if (err instanceof DocumentProblem || codeOf(err) === 'DC_ERR_VALIDATION') {
      throw new errors.DC_ERR_INVALID_ITEM(`${at}: ${(err as Error).message}`)
    }
    throw err
  }
}

/** One entry checked against the table: the key is exactly the key (types right), each image has that key. */
function changeOf(description: TableDescription, raw: RawChange, format: WriteFormat, at: string): ItemChange {
  const names = keyNames(description)
  const key = convert(raw.key, format, `${at}.key`)
  const attrs = [description.key.partition, ...(description.key.sort ? [description.key.sort] : [])]
  for (const attr of attrs) {
    const v = key[attr.name]
    if (v === undefined) throw new errors.DC_ERR_INVALID_KEY(`${at}.key lacks the key attribute '${attr.name}'`)
    if ((v as unknown as Record<string, unknown>)[attr.type] === undefined)
      throw new errors.DC_ERR_INVALID_KEY(`${at}.key '${attr.name}' must be of type ${attr.type}`)
  }
  const extra = Object.keys(key).find((k) => !names.includes(k))
  if (extra !== undefined) throw new errors.DC_ERR_INVALID_KEY(`${at}.key must be exactly the key (${names.join(', ')}); '${extra}' is not a key attribute`)
  const change: ItemChange = { key }
  for (const which of ['oldImage', 'newImage'] as const) {
    const image = raw[which]
    if (image === undefined) continue
    if (image === null) {
      change[which] = null
      continue
    }
    const item = convert(image, format, `${at}.${which}`)
    if (keyString(names, item) !== keyString(names, key)) throw new errors.DC_ERR_INVALID_KEY(`${at}.${which} does not have the key given in ${at}.key`)
    change[which] = item
  }
  return change
}

/** POST /tables/:table/invalidations: invalidation for writers that are not dynacache. */
export default async function invalidationRoutes(fastify: FastifyInstance) {
  useLosslessJson(fastify)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  app.post(
    '/tables/:table/invalidations',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['writes'],
        summary: 'Tell the cache about writes made elsewhere (a Lambda on the stream, a migration): up to 1,000 items, or the whole table',
        description:
          'Each change `{ key, oldImage?, newImage? }` invalidates exactly what that write can change: the item, its partition, the index ' +
          'partitions of the images given (an image left out is unknown: every index of the table is invalidated for it; null: the item did ' +
          'not exist) and the table\'s scan pages. `{ "scope": "table" }` invalidates every entry of the table instead. Every entry is checked ' +
          'before anything is invalidated (400, nothing changed). Keys and images are documents by default (`format`), as `view=document` reads them.',
        params: TableParams,
        body: InvalidationBody,
        response: { 200: InvalidationAnswer, ...writeErrors },
      },
    },
    async (request) => {
      const { table } = request.params
      const body = request.body
      app.assertTableVisible(request.principal, table)
      if ((body.changes === undefined) === (body.scope === undefined)) {
        throw new errors.DC_ERR_VALIDATION('give either changes (up to 1,000 { key, oldImage?, newImage? }) or scope "table"')
      }
      const description = await app.cache.describe(table)
      const options = body.mode ? { mode: body.mode } : {}
      if (body.scope === 'table') {
        await app.cache.invalidateTable(table, options)
        request.log.info({ msg: 'cache.invalidated', table, scope: 'table' })
        return { invalidated: 0, scope: 'table' as const }
      }
      const changes = body.changes!.map((raw, i) => changeOf(description, raw, body.format, `changes[${i}]`))
      await app.cache.applyChanges(table, changes, options)
      request.log.info({ msg: 'cache.invalidated', table, scope: 'items', count: changes.length })
      return { invalidated: changes.length, scope: 'items' as const }
    },
  )
}
