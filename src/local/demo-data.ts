import type { AttributeValue, CreateTableCommandInput } from '@aws-sdk/client-dynamodb'

/** A DynamoDB item in attribute-value form, as the low-level client writes it. */
export type Item = Record<string, AttributeValue>

export const DEMO_USERS_TABLE = 'demo-users'
export const DEMO_ORDERS_TABLE = 'demo-orders'

/** How many items `npm start` seeds by default. */
export const DEMO_COUNTS = { users: 5000, orders: 20000 } as const

/** 38 significant digits, DynamoDB's maximum precision: stored on user-00001 and order-000001. */
export const PRECISE_NUMBER = '12345678901234567890.123456789012345678'

/** Every `BIG_EVERY`-th item (offset by half) carries a ~150 KB attribute, well over 100 KB. */
export const BIG_EVERY = { users: 1000, orders: 5000 } as const
export const BIG_BYTES = 150 * 1024

export const usersTable: CreateTableCommandInput = {
  TableName: DEMO_USERS_TABLE,
  BillingMode: 'PAY_PER_REQUEST',
  KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
  AttributeDefinitions: [
    { AttributeName: 'userId', AttributeType: 'S' },
    { AttributeName: 'email', AttributeType: 'S' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'byEmail',
      KeySchema: [{ AttributeName: 'email', KeyType: 'HASH' }],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
}

export const ordersTable: CreateTableCommandInput = {
  TableName: DEMO_ORDERS_TABLE,
  BillingMode: 'PAY_PER_REQUEST',
  KeySchema: [
    { AttributeName: 'PK', KeyType: 'HASH' },
    { AttributeName: 'SK', KeyType: 'RANGE' },
  ],
  AttributeDefinitions: [
    { AttributeName: 'PK', AttributeType: 'S' },
    { AttributeName: 'SK', AttributeType: 'S' },
    { AttributeName: 'status', AttributeType: 'S' },
    { AttributeName: 'createdAt', AttributeType: 'S' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'byStatus',
      KeySchema: [
        { AttributeName: 'status', KeyType: 'HASH' },
        { AttributeName: 'createdAt', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
}

/**
 * mulberry32, seeded per item: the same item on every machine and for any seed size, without a
 * dependency (Math.random cannot be seeded).
 */
function random(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const pick = <T>(list: readonly T[]): T => list[int(0, list.length - 1)]!
  return {
    next,
    int,
    pick,
    chance: (p: number) => next() < p,
    /** `n` distinct picks, in list order (sets must not repeat a member). */
    some: <T>(list: readonly T[], n: number): T[] => {
      const chosen = new Set<number>()
      while (chosen.size < Math.min(n, list.length)) chosen.add(int(0, list.length - 1))
      return [...chosen].sort((x, y) => x - y).map((i) => list[i]!)
    },
    bytes: (n: number) => {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = int(0, 255)
      return out
    },
    digits: (n: number) => {
      let s = String(int(1, 9))
      while (s.length < n - 1) s += String(int(0, 9))
      return s + String(int(1, 9))
    },
  }
}
type Random = ReturnType<typeof random>

const rngFor = (table: number, index: number) => random(Math.imul(index + 1, 0x9e3779b1) ^ table)

const FIRST = 'Ada Alan Grace Linus Margaret Dennis Barbara Ken Frances Edsger Radia Tim'.split(' ')
const LAST = 'Lovelace Turing Hopper Torvalds Hamilton Ritchie Liskov Thompson Allen Dijkstra Perlman Kay'.split(' ')
const CITIES = ['Lisbon', 'Berlin', 'Austin', 'Osaka', 'Nairobi', 'Lima', 'Oslo', 'Perth', 'Montreal', 'Pune']
const TAGS = ['beta', 'vip', 'newsletter', 'mobile', 'churn-risk', 'early-adopter', 'b2b', 'student']
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'] as const
const PRODUCTS = 'keyboard mouse monitor cable dock headset webcam stand lamp chair'.split(' ')
const WORDS = 'cache table item query scan index stream shard region export batch worker'.split(' ')

const pad = (n: number, width: number) => String(n).padStart(width, '0')
export const userId = (i: number) => `user-${pad(i, 5)}`
export const orderId = (i: number) => `order-${pad(i, 6)}`

/** A decimal as DynamoDB stores it (no trailing zeros), from an integer number of hundredths. */
function money(cents: number): string {
  const sign = cents < 0 ? '-' : ''
  const abs = Math.abs(cents)
  const frac = pad(abs % 100, 2).replace(/0+$/, '')
  return `${sign}${Math.floor(abs / 100)}${frac ? `.${frac}` : ''}`
}

const isoDate = (rng: Random) => new Date(Date.UTC(2020, 0, 1) + rng.int(0, 6 * 365 * 24 * 3600) * 1000).toISOString()

const text = (rng: Random, bytes: number) => {
  const parts: string[] = []
  let size = 0
  while (size < bytes) {
    const word = rng.pick(WORDS)
    parts.push(word)
    size += word.length + 1
  }
  return parts.join(' ')
}

const S = (s: string): AttributeValue => ({ S: s })
const N = (n: number | string): AttributeValue => ({ N: String(n) })

/** User number `i` (1-based): every attribute type appears across the users. */
export function demoUser(i: number): Item {
  const rng = rngFor(1, i)
  const first = rng.pick(FIRST)
  const last = rng.pick(LAST)
  const item: Item = {
    userId: S(userId(i)),
    email: S(`${first}.${last}.${i}@example.com`.toLowerCase()),
    name: S(`${first} ${last}`),
    age: N(rng.int(18, 90)),
    balance: N(money(rng.int(-50_000, 5_000_000))),
    // 20+ significant digits: more than a JavaScript number keeps.
    lifetimeValue: N(`${rng.digits(16)}.${rng.digits(8)}`),
    createdAt: S(isoDate(rng)),
    active: { BOOL: rng.chance(0.8) },
    tags: { SS: rng.some(TAGS, rng.int(1, 3)) },
    luckyNumbers: { NS: rng.some([7, 13, 42, 3.14, -1, 1e21, 0.001, 99], rng.int(1, 3)).map(String) },
    avatarHash: { B: rng.bytes(16) },
    address: {
      M: {
        street: S(`${rng.int(1, 999)} ${rng.pick(LAST)} Street`),
        city: S(rng.pick(CITIES)),
        zip: S(pad(rng.int(0, 99999), 5)),
        geo: { M: { lat: N(money(rng.int(-9_000, 9_000))), lon: N(money(rng.int(-18_000, 18_000))) } },
      },
    },
    phones: {
      L: Array.from({ length: rng.int(0, 2) }, (_, n) => ({
        M: { type: S(n === 0 ? 'mobile' : 'work'), number: S(`+1-555-${pad(rng.int(0, 9999), 4)}`) },
      })),
    },
    preferences: {
      M: {
        theme: S(rng.pick(['light', 'dark', 'system'])),
        newsletter: { BOOL: rng.chance(0.5) },
        languages: { L: rng.some(['en', 'pt', 'de', 'ja', 'sw'], rng.int(1, 2)).map(S) },
        limits: { M: { daily: N(rng.int(1, 100)), ratio: N(money(rng.int(1, 99))) } },
      },
    },
    middleName: rng.chance(0.3) ? { NULL: true } : S(rng.pick(FIRST)),
  }
  if (rng.chance(0.2)) item.recoveryCodes = { BS: [rng.bytes(8), rng.bytes(8), rng.bytes(8)] }
  if (i % 100 === 1) item.ledgerBalance = N(i === 1 ? PRECISE_NUMBER : `-${rng.digits(20)}.${rng.digits(18)}`)
  if (i % BIG_EVERY.users === BIG_EVERY.users / 2) item.profilePhoto = { B: rng.bytes(BIG_BYTES) }
  return item
}

/** Order number `i` (1-based) of a customer among `users` users. */
export function demoOrder(i: number, users: number): Item {
  const rng = rngFor(2, i)
  const customer = userId(rng.int(1, Math.max(users, 1)))
  const createdAt = isoDate(rng)
  const lines = Array.from({ length: rng.int(1, 4) }, () => {
    const qty = rng.int(1, 5)
    const unit = rng.int(199, 49_999)
    return { sku: `${rng.pick(PRODUCTS)}-${rng.int(100, 999)}`, qty, unit }
  })
  const total = lines.reduce((sum, l) => sum + l.qty * l.unit, 0)
  const item: Item = {
    PK: S(`CUSTOMER#${customer}`),
    SK: S(`ORDER#${createdAt}#${orderId(i)}`),
    orderId: S(orderId(i)),
    customerId: S(customer),
    status: S(rng.pick(STATUSES)),
    createdAt: S(createdAt),
    total: N(money(total)),
    currency: S(rng.pick(['USD', 'EUR', 'JPY'])),
    exchangeRate: N(`1.${rng.digits(21)}`),
    lines: {
      L: lines.map((l) => ({ M: { sku: S(l.sku), qty: N(l.qty), unitPrice: N(money(l.unit)) } })),
    },
    shipping: {
      M: {
        method: S(rng.pick(['standard', 'express', 'pickup'])),
        address: { M: { city: S(rng.pick(CITIES)), zip: S(pad(rng.int(0, 99999), 5)) } },
        trackingNumber: rng.chance(0.5) ? S(`TRK${rng.digits(12)}`) : { NULL: true },
      },
    },
    giftWrap: { BOOL: rng.chance(0.1) },
    weightsKg: { NS: [...new Set(lines.map(() => money(rng.int(1, 2500))))] },
  }
  if (rng.chance(0.25)) item.discount = N(money(-rng.int(100, 2500)))
  if (rng.chance(0.15)) item.couponCodes = { SS: rng.some(['WELCOME', 'SPRING', 'VIP10', 'FREESHIP'], rng.int(1, 2)) }
  if (rng.chance(0.1)) item.attachments = { BS: [rng.bytes(24), rng.bytes(24)] }
  if (rng.chance(0.2)) item.note = { NULL: true }
  if (i === 1) item.preciseAmount = N(PRECISE_NUMBER)
  if (i % BIG_EVERY.orders === BIG_EVERY.orders / 2) item.invoiceText = S(text(rng, BIG_BYTES))
  return item
}

/** The demo tables with their item generators, in seeding order. */
export function demoTables(counts: { users: number; orders: number }) {
  return [
    { input: usersTable, count: counts.users, item: (i: number) => demoUser(i) },
    { input: ordersTable, count: counts.orders, item: (i: number) => demoOrder(i, counts.users) },
  ]
}
