import { Agent } from 'node:http'
import { createDynamoClients } from '../../src/shared/dynamo/client.ts'
import { createTable, putItems } from '../../test/helpers/tables.ts'
import { httpRequest } from '../lib/http.ts'
import { fmtInt } from '../lib/numbers.ts'
import { type BenchStack, bearer } from '../lib/stack.ts'
import type { Scenario } from './context.ts'

const TABLE = 'bench_coherence'
const PARTITIONS = 100
const ITEMS_PER_PARTITION = 5
/** Partitions each batch writes (one item each). */
const WRITTEN = 5
const READERS = 8
const TARGET = 0.95

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const item = (p: number, sk: number, v: number) => ({
  pk: { S: `p${p}` },
  sk: { N: String(sk) },
  v: { N: String(v) },
  body: { S: `partition ${p} item ${sk} version ${v}` },
})
const queryPath = (p: number) => `/tables/${TABLE}/query?pk=p${p}&limit=10`

interface Phase {
  reads: number
  hits: number
  writes: number
}

/**
 * Readers sweep cached queries of every partition while `write` runs `rounds` times (each followed by a
 * full sweep), and count X-Cache: HIT among the answers.
 */
async function measure(stack: BenchStack, rounds: number, write: (round: number) => Promise<void>): Promise<Phase> {
  const agent = new Agent({ keepAlive: true, maxSockets: READERS })
  const headers = { authorization: bearer('read'), 'accept-encoding': 'gzip' }
  const phase: Phase = { reads: 0, hits: 0, writes: 0 }
  let running = true
  let sweeps = 0
  const reader = async (lane: number) => {
    for (let i = lane; running; i += READERS) {
      const res = await httpRequest(`${stack.api.baseUrl}${queryPath(i % PARTITIONS)}`, { headers, agent })
      if (res.status !== 200) throw new Error(`GET ${queryPath(i % PARTITIONS)}: ${res.status} ${res.body.toString().slice(0, 200)}`)
      phase.reads++
      if (res.headers['x-cache'] === 'HIT') phase.hits++
      if (lane === 0 && i % PARTITIONS < READERS) sweeps++
    }
  }
  const readers = Array.from({ length: READERS }, (_, lane) => reader(lane))
  try {
    for (let round = 0; round < rounds; round++) {
      await write(round)
      phase.writes++
      // A whole sweep after each write, so every invalidated entry is read (and counted) again.
      const until = sweeps + 2
      while (sweeps < until) await sleep(20)
    }
  } finally {
    running = false
    await Promise.all(readers)
    agent.destroy()
  }
  return phase
}

async function runBatch(stack: BenchStack, round: number) {
  const headers = { authorization: bearer('write'), 'content-type': 'application/json' }
  const first = (round * WRITTEN) % PARTITIONS
  const operations = Array.from({ length: WRITTEN }, (_, i) => ({ put: item(first + i, 0, round + 2) }))
  const res = await httpRequest(`${stack.api.baseUrl}/tables/${TABLE}/batches`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ format: 'typed', operations }),
  })
  if (res.status !== 202) throw new Error(`POST batches: ${res.status} ${res.body.toString().slice(0, 300)}`)
  const { id } = JSON.parse(res.body.toString()) as { id: string }
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(50)) {
    const view = await httpRequest(`${stack.api.baseUrl}/batches/${encodeURIComponent(id)}`, { headers })
    const status = (JSON.parse(view.body.toString()) as { status?: string }).status
    if (status === 'completed') return
    if (status === 'failed') throw new Error(`batch ${id} failed: ${view.body.toString().slice(0, 300)}`)
  }
  throw new Error(`batch ${id} not completed within 120 s`)
}

const rate = (p: Phase) => (p.reads === 0 ? 0 : p.hits / p.reads)
const pct = (x: number) => `${(x * 100).toFixed(1)}%`

/**
 * Issue 14: cached queries over 100 partitions while batches write 5 of them. Scoped invalidation
 * (docs/coherence.md) drops only the written partitions' queries, so the hit rate stays high; the
 * reference is the same workload with the whole table invalidated after each batch (DELETE
 * /tables/:table/cache, what every batch did before).
 */
export const coherence: Scenario = {
  id: '11',
  title: 'hit rate of cached queries while batches write 5 of 100 partitions',
  target: `>= ${TARGET * 100}% hits`,
  requires: 'batches',
  async run({ stack, options, log }) {
    const rounds = options.quick ? 3 : 10
    const direct = createDynamoClients({ DYNAMODB_ENDPOINT: stack.dynamoEndpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 30_000 })
    const worker = await stack.startWorker('coherence batch worker', { WORKER_QUEUES: 'batch-write' })
    try {
      await createTable(direct.raw, TABLE, { pk: 'S', sk: 'N' })
      await putItems(
        direct.raw,
        TABLE,
        Array.from({ length: PARTITIONS * ITEMS_PER_PARTITION }, (_, i) => item(Math.floor(i / ITEMS_PER_PARTITION), i % ITEMS_PER_PARTITION, 1)),
      )
      // Warm every query once.
      for (let p = 0; p < PARTITIONS; p++) await httpRequest(`${stack.api.baseUrl}${queryPath(p)}`, { headers: { authorization: bearer('read') } })

      const scoped = await measure(stack, rounds, (round) => runBatch(stack, round))
      log(`  scoped: ${fmtInt(scoped.reads)} reads, ${pct(rate(scoped))} hits over ${scoped.writes} batches of ${WRITTEN} partitions`)
      const whole = await measure(stack, rounds, async (round) => {
        await runBatch(stack, round + rounds)
        const res = await httpRequest(`${stack.api.baseUrl}/tables/${TABLE}/cache`, { method: 'DELETE', headers: { authorization: bearer('admin') } })
        if (res.status !== 200) throw new Error(`DELETE cache: ${res.status}`)
      })
      log(`  whole-table invalidation: ${fmtInt(whole.reads)} reads, ${pct(rate(whole))} hits`)
      return [
        {
          scenario: `11. coherence: ${READERS} readers over ${PARTITIONS} partitions' queries, ${rounds} batches writing ${WRITTEN} partitions`,
          figure: `${pct(rate(scoped))} hits (${fmtInt(scoped.hits)}/${fmtInt(scoped.reads)})`,
          reference: `whole-table invalidation ${pct(rate(whole))}`,
          ratio: '-',
          target: `>= ${TARGET * 100}%`,
          verdict: rate(scoped) >= TARGET ? 'pass' : 'FAIL',
          data: { scoped, whole, rounds, partitions: PARTITIONS, written: WRITTEN, readers: READERS },
        },
      ]
    } finally {
      await worker.stop()
      direct.close()
    }
  },
}
