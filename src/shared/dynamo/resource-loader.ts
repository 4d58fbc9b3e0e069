import {
  type AttributeValue,
  DescribeTableCommand,
  type DescribeTableCommandOutput,
  GetItemCommand,
  type GetItemCommandOutput,
  ListTablesCommand,
  type ListTablesCommandOutput,
  QueryCommand,
  type QueryCommandOutput,
  ScanCommand,
  type ScanCommandOutput,
} from '@aws-sdk/client-dynamodb'
import type { LoadedValue } from '../cache/read-cache.ts'
import type { CachedResource } from '../cache/resources.ts'
import type { CursorCodec } from '../cursor.ts'
import { errors } from '../errors.ts'
import { batchGetItems } from './batch-get.ts'
import type { DynamoGateway } from './gateway.ts'
import { loadThroughBatch } from './item-batch.ts'
import { itemsToDocumentJson, itemsToTypedJson, itemToDocumentJson, itemToTypedJson } from './item-json.ts'
import { keyFromParams } from './key-values.ts'
import { type BuiltProjection, parseFields, projectionFor } from './projection.ts'
import { buildQuery } from './query-builder.ts'
import { type TableDescription, toTableDescription } from './table-description.ts'

export type View = 'document' | 'typed'

export interface ResourceLoaderOptions {
  gateway: DynamoGateway
  cursors: CursorCodec
  /** TABLES_ALLOW / TABLES_DENY. */
  tableAllowed(table: string): boolean
  /** The table's description (cached); throws DC_ERR_TABLE_NOT_FOUND when it does not exist. */
  describe(table: string): Promise<TableDescription>
  negativeTtl: number
}

/**
 * A details parameter the API sets for a table the caller may not see: that entry only ever holds the
 * table's 404, so a hidden table answers like a missing one without the real entry being read.
 */
export const HIDDEN_PARAM = 'hidden'

const json = (value: unknown, status = 200): LoadedValue => ({ status, body: Buffer.from(JSON.stringify(value)) })

/** An item entry's value as the loader renders it (`kind: 'item'`), for write-through of the same bytes. */
export function itemValue(item: Record<string, AttributeValue>, view: string | undefined): LoadedValue {
  return { status: 200, body: Buffer.from(view === 'typed' ? itemToTypedJson(item) : itemToDocumentJson(item)) }
}

/** The negative entry of a key with no item, as the loader renders it (it lives `negativeTtl`). */
export function itemNotFoundValue(table: string, negativeTtl: number): LoadedValue {
  const err = new errors.DC_ERR_ITEM_NOT_FOUND(table)
  return { ...json({ statusCode: 404, code: err.code, error: 'Not Found', message: err.message }, 404), ttl: negativeTtl }
}

/** What binds a cursor to its request: table, kind, index, the query and select, but not limit, view or fields. */
export function cursorBinding(resource: CachedResource): string {
  const p = resource.params
  const parts = [resource.table, resource.kind, p.index, p.pk, p.sk, p.skOp, p.sk2, p.filter, p.order]
  // Appended only when present, so the cursors of pages stay what they were.
  if (p.select !== undefined) parts.push(`select=${p.select}`)
  return parts.map((v) => v ?? '').join('\u0001')
}

/** DynamoDB pages (of up to 1 MB each) one `select=count` request reads before it answers with a cursor. */
export const COUNT_PAGES_PER_REQUEST = 10

/** The ProjectionExpression of a read with `fields`, or nothing; names use `#p` placeholders. */
function projectionOf(description: TableDescription, params: Readonly<Record<string, string>>): BuiltProjection | undefined {
  return params.fields === undefined ? undefined : projectionFor(description, parseFields(params.fields), params.index)
}

function pageBody(items: Record<string, AttributeValue>[], view: string | undefined, cursor: string | null): Buffer {
  const itemsJson = view === 'typed' ? itemsToTypedJson(items) : itemsToDocumentJson(items)
  return Buffer.from(`{"items":${itemsJson},"count":${items.length},"cursor":${JSON.stringify(cursor)}}`)
}

/**
 * Loads each kind of cached resource from DynamoDB and renders the exact response body. Used by the
 * API on a miss and by workers for refreshes, so both produce byte-identical entries.
 */
export function createResourceLoader({ gateway, cursors, tableAllowed, describe, negativeTtl }: ResourceLoaderOptions) {
  const notFound = (err: Error) => ({
    ...json({ statusCode: 404, code: (err as { code?: string }).code, error: 'Not Found', message: err.message }, 404),
    ttl: negativeTtl,
  })

  async function listTables(): Promise<LoadedValue> {
    const tables: string[] = []
    let start: string | undefined
    do {
      const page = await gateway.send<ListTablesCommandOutput>(null, new ListTablesCommand({ ExclusiveStartTableName: start, Limit: 100 }))
      for (const name of page.TableNames ?? []) if (tableAllowed(name)) tables.push(name)
      start = page.LastEvaluatedTableName
    } while (start)
    return json({ tables })
  }

  async function details(table: string): Promise<LoadedValue> {
    try {
      const out = await gateway.send<DescribeTableCommandOutput>(table, new DescribeTableCommand({ TableName: table }))
      return json(toTableDescription(out.Table!))
    } catch (err) {
      if ((err as { code?: string }).code === 'DC_ERR_TABLE_NOT_FOUND') return notFound(err as Error)
      throw err
    }
  }

  function startKey(resource: CachedResource) {
    return resource.params.cursor ? cursors.decode(resource.params.cursor, cursorBinding(resource)) : undefined
  }

  function nextCursor(resource: CachedResource, last: Record<string, AttributeValue> | undefined) {
    return last ? cursors.encode(last, cursorBinding(resource)) : null
  }

  /**
   * `select=count`: Select COUNT pages from where the cursor points, up to COUNT_PAGES_PER_REQUEST of them,
   * summed; a cursor to continue when the table (or query) has more.
   */
  async function countPages(
    resource: CachedResource & { table: string },
    send: (
      start: Record<string, AttributeValue> | undefined,
    ) => Promise<{ Count?: number; ScannedCount?: number; LastEvaluatedKey?: Record<string, AttributeValue> }>,
  ): Promise<LoadedValue> {
    let count = 0
    let scannedCount = 0
    let start = startKey(resource)
    for (let page = 0; page < COUNT_PAGES_PER_REQUEST; page++) {
      const out = await send(start)
      count += out.Count ?? 0
      scannedCount += out.ScannedCount ?? 0
      start = out.LastEvaluatedKey
      if (!start) break
    }
    return { status: 200, body: Buffer.from(`{"count":${count},"scannedCount":${scannedCount},"cursor":${JSON.stringify(nextCursor(resource, start))}}`) }
  }

  async function scanPage(resource: CachedResource & { table: string }, consistent = false): Promise<LoadedValue> {
    const { params, table } = resource
    const description = await describe(table)
    if (params.index && !description.indexes.some((i) => i.name === params.index)) {
      throw new errors.DC_ERR_INDEX_NOT_FOUND(params.index, table)
    }
    if (params.select === 'count') {
      return countPages(resource, (start) =>
        gateway.send<ScanCommandOutput>(
          table,
          new ScanCommand({
            TableName: table,
            ...(params.index ? { IndexName: params.index } : {}),
            Select: 'COUNT',
            ExclusiveStartKey: start,
            ...(consistent ? { ConsistentRead: true } : {}),
          }),
        ),
      )
    }
    const out = await gateway.send<ScanCommandOutput>(
      table,
      new ScanCommand({
        TableName: table,
        ...(params.index ? { IndexName: params.index } : {}),
        ...projectionOf(description, params),
        Limit: Number(params.limit),
        ExclusiveStartKey: startKey(resource),
        ...(consistent ? { ConsistentRead: true } : {}),
      }),
    )
    return { status: 200, body: pageBody(out.Items ?? [], params.view, nextCursor(resource, out.LastEvaluatedKey)) }
  }

  async function item(resource: CachedResource & { table: string }): Promise<LoadedValue> {
    const { params, table } = resource
    const description = await describe(table)
    const key = keyFromParams(description, params.pk!, params.sk)
    const projection = projectionOf(description, params)
    // Within a batch-get, the misses of the whole batch are read by one BatchGetItem.
    const batched = loadThroughBatch(key, (keys) => batchGetItems(gateway, table, keys, projection ? { projection } : {}))
    const found = batched
      ? await batched
      : (await gateway.send<GetItemCommandOutput>(table, new GetItemCommand({ TableName: table, Key: key, ...projection }))).Item
    if (!found) return itemNotFoundValue(table, negativeTtl)
    return itemValue(found, params.view)
  }

  async function queryPage(resource: CachedResource & { table: string }, consistent = false): Promise<LoadedValue> {
    const { params, table } = resource
    const description = await describe(table)
    const query = buildQuery(description, {
      pk: params.pk!,
      ...(params.sk !== undefined ? { sk: params.sk } : {}),
      ...(params.skOp !== undefined ? { skOp: params.skOp } : {}),
      ...(params.sk2 !== undefined ? { sk2: params.sk2 } : {}),
      ...(params.index !== undefined ? { index: params.index } : {}),
      ...(params.filter !== undefined ? { filter: params.filter } : {}),
      order: params.order === 'desc' ? 'desc' : 'asc',
    })
    if (params.select === 'count') {
      return countPages(resource, (start) =>
        gateway.send<QueryCommandOutput>(
          table,
          new QueryCommand({
            TableName: table,
            ...query,
            Select: 'COUNT',
            ExclusiveStartKey: start,
            ...(consistent ? { ConsistentRead: true } : {}),
          }),
        ),
      )
    }
    const projection = projectionOf(description, params)
    const out = await gateway.send<QueryCommandOutput>(
      table,
      new QueryCommand({
        TableName: table,
        ...query,
        ...(projection
          ? {
              ProjectionExpression: projection.ProjectionExpression,
              ExpressionAttributeNames: { ...query.ExpressionAttributeNames, ...projection.ExpressionAttributeNames },
            }
          : {}),
        Limit: Number(params.limit),
        ExclusiveStartKey: startKey(resource),
        ...(consistent ? { ConsistentRead: true } : {}),
      }),
    )
    return { status: 200, body: pageBody(out.Items ?? [], params.view, nextCursor(resource, out.LastEvaluatedKey)) }
  }

  /**
   * The loader for the read cache: one function for every kind. `consistent` (scan and query pages):
   * ConsistentRead, for `consistent=true` reads, which the API stores as the entry (never via the cache).
   */
  return async function load(resource: CachedResource, options: { consistent?: boolean } = {}): Promise<LoadedValue> {
    if (resource.kind === 'tables') return listTables()
    const table = resource.table
    if (table === null) throw new Error(`${resource.kind} needs a table`)
    if (!tableAllowed(table) || (resource.kind === 'details' && resource.params[HIDDEN_PARAM] !== undefined)) {
      // A denied table's details are the same cached 404 a missing table's are, headers and all.
      if (resource.kind === 'details') return notFound(new errors.DC_ERR_TABLE_NOT_FOUND(table))
      throw new errors.DC_ERR_TABLE_NOT_FOUND(table)
    }
    const withTable = { ...resource, table }
    switch (resource.kind) {
      case 'details':
        return details(table)
      case 'items':
        return scanPage(withTable, options.consistent)
      case 'item':
        return item(withTable)
      case 'query':
        return queryPage(withTable, options.consistent)
    }
  }
}
