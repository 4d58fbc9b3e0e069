import { Agent } from 'node:http'
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { startDynamoProxy } from '../../test/helpers/dynamo-proxy.ts'
import { startStreamsEmulator } from '../../test/helpers/streams-emulator.ts'
import { httpRequest } from '../lib/http.ts'
import { percentile } from '../lib/numbers.ts'
import { bearer } from '../lib/stack.ts'
import type { Scenario } from './context.ts'

const TABLE = 'bench_streams'
const ITEMS = 20
const TARGET_MS = 2000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Issue 14: an item written straight to DynamoDB (not through dynacache) becomes visible through cached
 * reads of both API processes, with the Streams follower on in 2 worker processes (product defaults
 * for polling, passes and leases). DynamoDB Streams is the test emulator (test/helpers/streams-emulator.ts),
 * fed by a proxy in front of dynalite: the figure includes no real Streams latency (in AWS, records
 * typically appear within a second of the write).
 */
export const streamsVisibility: Scenario = {
  id: '12',
  title: 'visibility of direct writes through cached reads, Streams follower on',
  target: `p99 <= ${TARGET_MS} ms`,
  async run({ stack, options, cleanup, log }) {
    const writes = options.quick ? 20 : 100
    const emulator = await startStreamsEmulator()
    cleanup.add('streams emulator', () => emulator.close())
    const writer = await startDynamoProxy(stack.dynamoEndpoint, {}, { tap: emulator.writeTap(stack.dynamoEndpoint) })
    cleanup.add('streams writer proxy', () => writer.close())
    const direct = new DynamoDBClient({ endpoint: writer.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } })
    cleanup.add('streams writer client', () => direct.destroy())
    await direct.send(
      new CreateTableCommand({
        TableName: TABLE,
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    )
    const put = (i: number, v: number) => direct.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: `k${i}` }, v: { N: String(v) } } }))
    for (let i = 0; i < ITEMS; i++) await put(i, 0)

    const env = { WORKER_QUEUES: 'streams-follow', STREAMS_FOLLOW: TABLE, DYNAMODB_STREAMS_ENDPOINT: emulator.endpoint, STREAMS_DISCOVER_S: '1' }
    const workers = [await stack.startWorker('streams follower 1', env), await stack.startWorker('streams follower 2', env)]
    const apis = [stack.api, stack.apiStatsOff]
    const agent = new Agent({ keepAlive: true, maxSockets: 4 })
    const headers = { authorization: bearer('read') }
    const read = async (base: string, i: number) => {
      const res = await httpRequest(`${base}/tables/${TABLE}/items/k${i}`, { headers, agent })
      return res.status === 200 ? (JSON.parse(res.body.toString()) as { v?: number }).v : undefined
    }
    const seen = async (i: number, v: number, timeoutMs: number) => {
      const start = performance.now()
      const pending = new Set(apis.map((a) => a.baseUrl))
      while (pending.size > 0) {
        for (const base of [...pending]) if ((await read(base, i)) === v) pending.delete(base)
        if (pending.size === 0) break
        if (performance.now() - start > timeoutMs) throw new Error(`k${i} = ${v} not visible within ${timeoutMs} ms`)
        await sleep(10)
      }
      return performance.now() - start
    }
    try {
      // Warm: every item cached in both processes, and the follower caught up with the seeding.
      for (let i = 0; i < ITEMS; i++) await seen(i, 0, 60_000)
      await put(0, -1)
      await seen(0, -1, 120_000)
      const times: number[] = []
      for (let n = 1; n <= writes; n++) {
        const i = n % ITEMS
        await put(i, n)
        times.push(await seen(i, n, 30_000))
      }
      const p50 = percentile(times, 50)
      const p99 = percentile(times, 99)
      log(
        `  ${writes} direct writes: visible in both API processes after p50 ${Math.round(p50)} ms, p99 ${Math.round(p99)} ms, max ${Math.round(Math.max(...times))} ms`,
      )
      return [
        {
          scenario: `12. direct writes visible through cached reads (2 API, 2 workers, Streams emulator), ${writes} writes`,
          figure: `p99 ${Math.round(p99)} ms (p50 ${Math.round(p50)} ms)`,
          reference: '-',
          ratio: '-',
          target: `p99 <= ${TARGET_MS} ms`,
          verdict: p99 <= TARGET_MS ? 'pass' : 'FAIL',
          data: { writes, p50, p99, max: Math.max(...times) },
        },
      ]
    } finally {
      agent.destroy()
      await Promise.all(workers.map((w) => w.stop()))
    }
  },
}
