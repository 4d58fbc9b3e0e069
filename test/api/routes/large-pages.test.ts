import { randomBytes } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import { ScanCommand } from '@aws-sdk/client-dynamodb'
import { Redis } from 'ioredis'
import t from 'tap'
import { itemsToTypedJson } from '../../../src/shared/dynamo/item-json.ts'
import { auth, build } from '../../helpers/app.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'

// Its own Redis, so INFO commandstats counts only this file's commands.
const services = await startServices(t, { ownRedis: true })
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'big', { id: 'S' })
// Random bytes do not compress: a ~900 KB page whose gzip (~680 KB) needs two 512 KB chunks.
await putItems(
  dynamo,
  'big',
  Array.from({ length: 1000 }, (_, i) => ({
    id: { S: `item-${String(i).padStart(4, '0')}` },
    blob: { B: new Uint8Array(randomBytes(640)) },
    n: { N: `${i}.0000000000000000000000000000000001` },
  })),
)

const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())
async function commandCalls(): Promise<Record<string, number>> {
  const info = await redis.info('commandstats')
  const calls: Record<string, number> = {}
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) calls[m[1]!] = Number(m[2])
  return calls
}

const delta = (before: Record<string, number>, after: Record<string, number>, command: string) => (after[command] ?? 0) - (before[command] ?? 0)

// These count Redis commands per read, so the near cache (which answers hot hits from memory) is off.
const NO_NEAR = { NEAR_CACHE_TTL_MS: '0' }

t.test('a 1,000-item page of ~900 KB is stored in chunks and round-trips exactly', async (t) => {
  const app = await build(t, services, NO_NEAR)
  const url = '/tables/big/items?limit=1000&view=typed'
  const miss = await app.inject({ url, headers: auth('read') })
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  const page = miss.json()
  t.equal(page.count, 1000, 'a full page of 1,000 items')
  t.ok(miss.rawPayload.length > 850_000, `${miss.rawPayload.length} bytes`)

  const [, chunkKeys] = await redis.scan('0', 'MATCH', `${app.keys.prefix}:{big}:c:*`, 'COUNT', 10000)
  t.equal(chunkKeys.length, 2, 'the gzip body is stored in two chunks of CACHE_CHUNK_BYTES')

  const before = await commandCalls()
  const hit = await app.inject({ url, headers: { ...auth('read'), 'accept-encoding': 'gzip' } })
  const after = await commandCalls()
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(gunzipSync(hit.rawPayload).toString(), miss.body, 'the HIT inflates to the exact MISS body')
  // The entry script's HMGET and its MGET of the generations run once per cache read (commands inside
  // scripts are counted too); the chunks are one more MGET.
  t.equal(delta(before, after, 'hmget'), 1, 'one entry read (script)')
  t.equal(delta(before, after, 'mget'), 2, "the script's generations, then one MGET of the chunks: two round trips")

  const direct = await dynamo.send(new ScanCommand({ TableName: 'big', Limit: 1000 }))
  t.equal(
    miss.body.slice('{"items":'.length, miss.body.indexOf(',"count":')),
    itemsToTypedJson(direct.Items ?? []),
    'byte-identical to the items read with the low-level client',
  )

  const plain = await app.inject({ url, headers: auth('read') })
  t.equal(plain.body, miss.body, 'a plain client gets the same body, inflated')
})

t.test('a small page is one Redis round trip; a 304 reads no body', async (t) => {
  const app = await build(t, services, NO_NEAR)
  const url = '/tables/big/items?limit=5'
  const first = await app.inject({ url, headers: auth('read') })
  let before = await commandCalls()
  await app.inject({ url, headers: auth('read') })
  let after = await commandCalls()
  t.equal(delta(before, after, 'hmget'), 1, 'one entry read (script)')
  t.equal(delta(before, after, 'hget'), 1, 'the inline body comes from the same script')
  t.equal(delta(before, after, 'mget'), 1, "only the script's MGET of the generations: no chunk reads, one round trip")
  before = await commandCalls()
  const revalidated = await app.inject({ url, headers: { ...auth('read'), 'if-none-match': first.headers.etag as string } })
  after = await commandCalls()
  t.equal(revalidated.statusCode, 304)
  t.equal(delta(before, after, 'hmget'), 1, 'one round trip')
  t.equal(delta(before, after, 'mget'), 1, "the script's generations only")
  t.equal(delta(before, after, 'hget'), 0, 'the body is left in Redis')
})
