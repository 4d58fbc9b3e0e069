import { fmtMs, fmtRatio } from '../lib/numbers.ts'
import type { Scenario } from './context.ts'
import { check, HEADERS, pairedRatio, urls } from './routes.ts'

/** 9. Latency of the gzip hit under a closed loop of N connections, next to the ceiling's. */
export const latency: Scenario = {
  id: '9',
  title: 'latency of the cache hit',
  target: 'reported',
  async run({ stack, options, measure }) {
    const { api } = stack
    const u = urls(stack)
    await check('hit', u.hit, HEADERS.gzip, { status: 200, headers: { 'x-cache': 'HIT' } })
    const r = await measure(
      [
        { key: 'hit', label: 'hit', url: u.hit, headers: HEADERS.gzip, pid: api.pid },
        { key: 'ceiling', label: 'ceiling', url: u.ceiling, headers: HEADERS.gzip, pid: api.pid },
      ],
      options.rounds.latency,
    )
    const hit = r.hit!
    const ceiling = r.ceiling!
    const conns = options.connections
    return (['p50', 'p99'] as const).map((p) => {
      const [a, b] = [hit[`${p}Ms`], ceiling[`${p}Ms`]]
      return {
        scenario: `9. hit latency ${p}, ${conns} conns`,
        figure: `hit ${fmtMs(a)}`,
        reference: `ceiling ${fmtMs(b)}`,
        ratio: fmtRatio(pairedRatio(hit, ceiling, (s) => s[`${p}Ms`])),
        target: 'reported',
        verdict: 'reported' as const,
        data: { percentile: p, hitMs: a, ceilingMs: b, connections: conns, hit, ceiling },
      }
    })
  },
}
