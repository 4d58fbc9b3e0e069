import {
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ListTagsOfResourceCommand,
  TagResourceCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb'
import { DEMO_COUNTS, demoTables, type Item } from './demo-data.ts'

/** Tag set on a demo table once every item is written; a table without it is (re)filled. */
export const SEED_TAG = 'dynacache:demo-seed'
const SEED_VERSION = 'v1'

/** BatchWriteItem's per-call limit. */
const BATCH_SIZE = 25
const MAX_UNPROCESSED_ROUNDS = 12

export interface SeedOptions {
  /** Item counts; the defaults are DEMO_COUNTS. Tests pass small ones. */
  users?: number
  orders?: number
  /** BatchWriteItem calls in flight at once. */
  concurrency?: number
  /** Stops seeding between batches (Ctrl-C during the first start). */
  signal?: AbortSignal
  onTable?: (event: { table: string; action: 'seeding' | 'seeded' | 'reused'; items: number; ms: number }) => void
}

/** The DynamoDB to fill: a local stand-in (dynalite or DynamoDB Local). */
export interface SeedTarget {
  endpoint: string
  region?: string
}

export interface SeedReport {
  seeded: Array<{ table: string; items: number; ms: number }>
  reused: string[]
}

/**
 * Creates and fills the demo tables that are not already complete. Idempotent: a complete table
 * (tagged) is left alone, and an interrupted one is refilled with the same keys, so nothing doubles.
 */
export async function seedDemoTables(target: SeedTarget, options: SeedOptions = {}): Promise<SeedReport> {
  const client = new DynamoDBClient({
    endpoint: target.endpoint,
    region: target.region ?? 'us-east-1',
    // The stand-ins accept any credentials; the SDK only needs some to sign with.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })
  // The SDK's logger step copies every request for its no-op logger: a third of the loader's CPU.
  client.middlewareStack.remove('loggerMiddleware')
  try {
    return await seed(client, options)
  } finally {
    client.destroy()
  }
}

async function seed(client: DynamoDBClient, options: SeedOptions): Promise<SeedReport> {
  const counts = { users: options.users ?? DEMO_COUNTS.users, orders: options.orders ?? DEMO_COUNTS.orders }
  const existing = await listTables(client)
  const report: SeedReport = { seeded: [], reused: [] }
  for (const table of demoTables(counts)) {
    const name = table.input.TableName!
    const arn = existing.has(name) ? await tableArn(client, name) : await createTable(client, table.input)
    if (existing.has(name) && (await isSeeded(client, arn))) {
      report.reused.push(name)
      options.onTable?.({ table: name, action: 'reused', items: 0, ms: 0 })
      continue
    }
    options.onTable?.({ table: name, action: 'seeding', items: table.count, ms: 0 })
    const started = Date.now()
    await writeAll(client, name, generate(table.count, table.item), options.concurrency ?? 8, options.signal)
    await client.send(
      new TagResourceCommand({
        ResourceArn: arn,
        Tags: [{ Key: SEED_TAG, Value: `${SEED_VERSION}:${table.count}` }],
      }),
    )
    const ms = Date.now() - started
    report.seeded.push({ table: name, items: table.count, ms })
    options.onTable?.({ table: name, action: 'seeded', items: table.count, ms })
  }
  return report
}

function* generate(count: number, item: (i: number) => Item): Generator<Item> {
  for (let i = 1; i <= count; i++) yield item(i)
}

async function listTables(client: DynamoDBClient): Promise<Set<string>> {
  const names = new Set<string>()
  let start: string | undefined
  do {
    const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }))
    for (const name of page.TableNames ?? []) names.add(name)
    start = page.LastEvaluatedTableName
  } while (start)
  return names
}

async function tableArn(client: DynamoDBClient, name: string): Promise<string> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: name }))
  return Table!.TableArn!
}

async function isSeeded(client: DynamoDBClient, arn: string): Promise<boolean> {
  const { Tags } = await client.send(new ListTagsOfResourceCommand({ ResourceArn: arn }))
  return (Tags ?? []).some((tag) => tag.Key === SEED_TAG)
}

/** Creates the table and waits until it is ACTIVE (instant on dynalite, seconds on DynamoDB Local). */
async function createTable(client: DynamoDBClient, input: CreateTableCommandInput): Promise<string> {
  const created = await client.send(new CreateTableCommand(input))
  let status = created.TableDescription?.TableStatus
  const deadline = Date.now() + 60_000
  while (status !== 'ACTIVE') {
    if (Date.now() > deadline) throw new Error(`table ${input.TableName} is still ${status} after 60 s`)
    await sleep(100)
    status = (await client.send(new DescribeTableCommand({ TableName: input.TableName }))).Table?.TableStatus
  }
  return created.TableDescription!.TableArn!
}

/** `concurrency` loops share one generator, each taking the next 25 items as soon as it is free. */
async function writeAll(client: DynamoDBClient, table: string, items: Iterator<Item>, concurrency: number, signal: AbortSignal | undefined): Promise<void> {
  const nextBatch = (): WriteRequest[] => {
    const batch: WriteRequest[] = []
    for (let r = items.next(); !r.done; r = items.next()) {
      batch.push({ PutRequest: { Item: r.value } })
      if (batch.length === BATCH_SIZE) break
    }
    return batch
  }
  const loop = async () => {
    for (let batch = nextBatch(); batch.length > 0; batch = nextBatch()) {
      signal?.throwIfAborted()
      await writeBatch(client, table, batch, signal)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, loop))
}

/** One BatchWriteItem, resending UnprocessedItems with backoff until none are left. */
async function writeBatch(client: DynamoDBClient, table: string, batch: WriteRequest[], signal?: AbortSignal) {
  let pending = batch
  for (let round = 0; pending.length > 0; round++) {
    if (round === MAX_UNPROCESSED_ROUNDS) {
      throw new Error(`seeding ${table}: ${pending.length} items still unprocessed after ${round} attempts`)
    }
    if (round > 0) await sleep(Math.min(50 * 2 ** round, 2000))
    signal?.throwIfAborted()
    const res = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }))
    pending = res.UnprocessedItems?.[table] ?? []
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
