import { fmtMs, fmtRatio } from '../lib/numbers.ts'
import { outside } from '../lib/outside.ts'
import type { Scenario } from './context.ts'
import { check, HEADERS, pairedRatio, urls } from './routes.ts'

/** 9. Latency of the gzip hit under a closed loop of N connections, next to LIMIT's (and the in-app ceiling's). */
export const latency: Scenario = {
  id: '9',
  title: 'latency of the cache hit',
  target: 'p50 <= 1.5x LIMIT',
  async run({ stack, options, measure, cleanup, log }) {
    const { api } = stack
    const u = urls(stack)
    const out = await outside(stack, cleanup, log)
    await check('hit', u.hit, HEADERS.gzip, { status: 200, headers: { 'x-cache': 'HIT' } })
    const r = await measure(
      [
        { key: 'hit', label: 'hit', url: u.hit, headers: HEADERS.gzip, pid: api.pid },
        { key: 'limit', label: 'LIMIT', url: out.limit.baseUrl, headers: HEADERS.gzip, pid: out.limit.pid },
        { key: 'ceiling', label: 'ceiling', url: u.ceiling, headers: HEADERS.gzip, pid: api.pid },
      ],
      options.rounds.latency,
    )
    const { hit, limit, ceiling } = r as Record<'hit' | 'limit' | 'ceiling', NonNullable<(typeof r)[string]>>
    const conns = options.connections
    return (['p50', 'p99'] as const).map((p) => {
      const ratio = pairedRatio(hit, limit, (s) => s[`${p}Ms`])
      const max = p === 'p50' ? 1.5 : undefined
      return {
        scenario: `9. hit latency ${p}, ${conns} conns`,
        figure: `hit ${fmtMs(hit[`${p}Ms`])}`,
        reference: `LIMIT ${fmtMs(limit[`${p}Ms`])}, in-app ceiling ${fmtMs(ceiling[`${p}Ms`])}`,
        ratio: fmtRatio(ratio),
        target: max === undefined ? 'reported' : `<= ${max}x`,
        verdict: max === undefined ? ('reported' as const) : ratio <= max ? ('pass' as const) : ('FAIL' as const),
        data: { percentile: p, hitMs: hit[`${p}Ms`], limitMs: limit[`${p}Ms`], ceilingMs: ceiling[`${p}Ms`], connections: conns, hit, limit, ceiling },
      }
    })
  },
}
