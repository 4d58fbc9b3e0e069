import { httpRequest, keepAliveAgent } from '../lib/http.ts'
import { bearer } from '../lib/stack.ts'
import type { Scenario } from './context.ts'
import { HEADERS, invalidate } from './routes.ts'

/**
 * 4. N concurrent requests for one cold page, split across the two API processes, counted at the
 * DynamoDB endpoint by the proxy: single-flight should let exactly one Scan through.
 */
export const stampede: Scenario = {
  id: '4',
  title: 'stampede on a cold key across two processes',
  target: '== 1 DynamoDB call',
  async run({ stack, options, log }) {
    const { proxy, tables } = stack
    const apis = [stack.api, stack.apiStatsOff]
    const { requests, rounds } = options.stampede
    const perApi = Math.ceil(requests / apis.length)
    const path = `/tables/${tables.cold}/items?limit=${options.pageItems}`
    const agents = apis.map(() => keepAliveAgent(perApi))
    const results: Array<{ scans: number; otherCalls: number; xCache: Record<string, number>; collapsed: number }> = []
    try {
      for (let round = 0; round < rounds; round++) {
        await invalidate(stack.api, tables.cold)
        // Re-read the table description in both processes (another page), so only the measured page is cold.
        for (const api of apis) await httpRequest(`${api.baseUrl}/tables/${tables.cold}/items?limit=1`, { headers: { authorization: bearer('read') } })
        // Open every connection first, so all requests leave at once.
        await Promise.all(apis.flatMap((api, i) => Array.from({ length: perApi }, () => httpRequest(`${api.baseUrl}/health`, { agent: agents[i]! }))))
        const [scansBefore, callsBefore] = [proxy.count('Scan', tables.cold), proxy.calls.length]
        const responses = await Promise.all(
          Array.from({ length: requests }, (_, n) =>
            httpRequest(`${apis[n % apis.length]!.baseUrl}${path}`, { headers: HEADERS.gzip, agent: agents[n % apis.length]! }),
          ),
        )
        const scans = proxy.count('Scan', tables.cold) - scansBefore
        const otherCalls = proxy.calls.slice(callsBefore).filter((c) => c.operation !== 'Scan').length
        const bad = responses.filter((r) => r.status !== 200)
        if (bad.length > 0) throw new Error(`${bad.length} of ${requests} requests failed, e.g. ${bad[0]!.status} ${bad[0]!.body.toString().slice(0, 200)}`)
        const etags = new Set(responses.map((r) => r.headers.etag))
        if (etags.size !== 1) throw new Error(`${etags.size} different ETags for one page`)
        const xCache: Record<string, number> = {}
        for (const r of responses) xCache[String(r.headers['x-cache'])] = (xCache[String(r.headers['x-cache'])] ?? 0) + 1
        const collapsed = responses.filter((r) => String(r.headers['cache-status']).includes('collapsed')).length
        results.push({ scans, otherCalls, xCache, collapsed })
        log(`  round ${round + 1}/${rounds}: ${scans} Scan, ${otherCalls} other DynamoDB calls; X-Cache ${JSON.stringify(xCache)}, ${collapsed} collapsed`)
      }
    } finally {
      for (const agent of agents) agent.destroy()
    }
    const worst = Math.max(...results.map((r) => r.scans))
    return [
      {
        scenario: `4. stampede, ${requests} req, ${apis.length} processes`,
        figure: `Scan calls per round: ${results.map((r) => r.scans).join(', ')}`,
        reference: `${requests} concurrent requests`,
        ratio: `${worst}/${requests}`,
        target: '== 1 call',
        verdict: results.every((r) => r.scans === 1) ? 'pass' : 'FAIL',
        data: { rounds: results },
      },
    ]
  },
}
