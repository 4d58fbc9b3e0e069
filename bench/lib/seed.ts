import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { createTable, type Item, putItems } from '../../test/helpers/tables.ts'

/** Tables the benchmark reads: one kept warm for the hit scenarios, one invalidated for the cold ones. */
export const TABLES = { hot: 'bench_hot', cold: 'bench_cold' } as const

/** Items per table; only the first page is read, the rest makes the table look like one. */
const ITEMS_PER_TABLE = 1000
/** Target size of one item as document JSON. */
const ITEM_BYTES = 200

const WORDS = (
  'amber basalt cobalt delta ember fjord granite harbor indigo juniper kestrel lagoon meadow nectar ' +
  'orchid pebble quartz raven saffron tundra umber violet willow xenon yarrow zephyr'
).split(' ')
const CITIES = ['Lisbon', 'Oslo', 'Kyoto', 'Quito', 'Perth', 'Accra', 'Tallinn', 'Austin']

/** Deterministic pseudo-random numbers (mulberry32), so every run reads the same bytes. */
function random(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An item of ~200 B of JSON: mixed strings, numbers and a boolean, compressible like real data (~3-4x). */
export function benchItem(i: number): Item {
  const rnd = random(i * 7919 + 17)
  const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)]!
  const id = `user-${String(i).padStart(6, '0')}`
  const item: Item = {
    id: { S: id },
    name: { S: `${pick(WORDS)} ${pick(WORDS)}` },
    email: { S: `${id}@${pick(WORDS)}.example` },
    city: { S: pick(CITIES) },
    score: { N: (rnd() * 1000).toFixed(3) },
    visits: { N: String(Math.floor(rnd() * 100_000)) },
    active: { BOOL: rnd() > 0.3 },
    createdAt: { S: new Date(1_700_000_000_000 + Math.floor(rnd() * 3e10)).toISOString() },
  }
  // Pad with a random token so each item is ~ITEM_BYTES: {"key":"value"} overhead counted roughly.
  const size = Object.entries(item).reduce((n, [k, v]) => n + k.length + JSON.stringify(Object.values(v)[0]).length + 4, 2)
  const tokenLength = Math.max(8, ITEM_BYTES - size - 10)
  let token = ''
  while (token.length < tokenLength) token += Math.floor(rnd() * 36 ** 6).toString(36)
  item.token = { S: token.slice(0, tokenLength) }
  return item
}

/** Creates both tables and writes their items (straight to dynalite, not through the counting proxy). */
export async function seedTables(client: DynamoDBClient): Promise<void> {
  const items = Array.from({ length: ITEMS_PER_TABLE }, (_, i) => benchItem(i + 1))
  for (const table of Object.values(TABLES)) {
    await createTable(client, table, { id: 'S' })
    await putItems(client, table, items)
  }
}
