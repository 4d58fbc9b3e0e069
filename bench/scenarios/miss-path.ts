import { ScanCommand } from '@aws-sdk/client-dynamodb'
import { httpRequest, keepAliveAgent } from '../lib/http.ts'
import { fmtMs, fmtRatio, median, percentile } from '../lib/numbers.ts'
import type { Scenario } from './context.ts'
import { HEADERS, invalidate } from './routes.ts'

/**
 * 5. A cold page through the API (entry invalidated before each read, so it is a real miss: Redis
 * read, lock, Scan, render, gzip, write) against the same Scan sent by this process with a client
 * configured like the API's. Both reach dynalite through the counting proxy. Timed one at a time,
 * alternating, over one keep-alive connection.
 */
export const missPath: Scenario = {
  id: '5',
  title: 'miss path',
  target: 'reported',
  async run({ stack, options, log }) {
    const { api, tables, dynamo } = stack
    const table = tables.cold
    const url = `${api.baseUrl}/tables/${table}/items?limit=${options.pageItems}`
    const agent = keepAliveAgent(1)
    const apiMs: number[] = []
    const bareMs: number[] = []

    const coldRead = async () => {
      await invalidate(api, table)
      const res = await httpRequest(url, { headers: HEADERS.gzip, agent })
      if (res.status !== 200 || res.headers['x-cache'] !== 'MISS') throw new Error(`cold read: ${res.status}, X-Cache ${res.headers['x-cache']}`)
      return res.ms
    }
    const bareScan = async () => {
      const t0 = performance.now()
      const out = await dynamo.raw.send(new ScanCommand({ TableName: table, Limit: options.pageItems }))
      const ms = performance.now() - t0
      if (out.Items?.length !== options.pageItems) throw new Error(`bare Scan returned ${out.Items?.length} items`)
      return ms
    }

    const { samples, warmup } = options.miss
    try {
      for (let i = 0; i < warmup + samples; i++) {
        let cold: number
        let bare: number
        if (i % 2 === 0) {
          cold = await coldRead()
          bare = await bareScan()
        } else {
          bare = await bareScan()
          cold = await coldRead()
        }
        if (i >= warmup) {
          apiMs.push(cold)
          bareMs.push(bare)
        }
      }
    } finally {
      agent.destroy()
    }
    const [apiP50, bareP50] = [median(apiMs), median(bareMs)]
    log(`  cold read p50 ${fmtMs(apiP50)} p90 ${fmtMs(percentile(apiMs, 90))}; bare Scan p50 ${fmtMs(bareP50)} p90 ${fmtMs(percentile(bareMs, 90))}`)
    return [
      {
        scenario: `5. miss path, ${options.pageItems}-item page`,
        figure: `cold read ${fmtMs(apiP50)} (p50)`,
        reference: `bare Scan ${fmtMs(bareP50)} (p50)`,
        ratio: fmtRatio(apiP50 / bareP50),
        target: 'reported',
        verdict: 'reported',
        data: {
          overheadMs: apiP50 - bareP50,
          api: { p50: apiP50, p90: percentile(apiMs, 90), samples: apiMs },
          bare: { p50: bareP50, p90: percentile(bareMs, 90), samples: bareMs },
        },
      },
    ]
  },
}
