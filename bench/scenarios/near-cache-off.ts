import { fmtInt, fmtRatio } from '../lib/numbers.ts'
import { outside } from '../lib/outside.ts'
import type { Row } from '../lib/report.ts'
import type { Scenario } from './context.ts'
import { check, HEADERS, throughputRow, urls } from './routes.ts'

/** Most a plain client's req/s may vary over the rounds (max / min) for the run to count as stable. */
const MAX_SPREAD = 1.3

/**
 * 10. The hit with the near cache off (NEAR_CACHE_TTL_MS=0, a third API process): every hit is a Redis
 * read. A gzip client gets the stored bytes; a plain client gets the body inflated once per entry, not
 * per request (without that, every hit allocated the whole page and the process went GC-bound,
 * flipping between two throughput levels). Measured against LIMIT; the plain client's req/s must stay
 * within MAX_SPREAD over every round (8 in a full run). Each hit run also reports its share of CPU spent
 * in garbage collection, and the machine's own drift over the same rounds is shown beside it.
 */
export const nearCacheOff: Scenario = {
  id: '10',
  title: 'cache hit, near cache off',
  target: `gzip >= 0.45x LIMIT; plain max/min <= ${MAX_SPREAD}`,
  async run({ stack, options, measure, cleanup, log }) {
    const api = await stack.startApi('api (near cache off)', { NEAR_CACHE_TTL_MS: '0' })
    const out = await outside(stack, cleanup, log)
    const u = urls(stack, api)
    const gzipBody = { 'content-encoding': 'gzip' }
    const plainBody = { 'content-encoding': undefined }
    const gz = await check('hit (near off)', u.hit, HEADERS.gzip, { status: 200, headers: { ...gzipBody, 'x-cache': 'HIT' } })
    const limit = await check('LIMIT', out.limit.baseUrl, HEADERS.gzip, { status: 200, headers: gzipBody })
    if (!gz.body.equals(limit.body)) throw new Error('LIMIT does not send the bytes the hit path sends')
    const plain = await check('hit plain (near off)', u.hit, HEADERS.plain, { status: 200, headers: { ...plainBody, 'x-cache': 'HIT' } })
    const limitPlain = await check('LIMIT (plain)', out.limit.baseUrl, HEADERS.plain, { status: 200, headers: plainBody })
    if (!plain.body.equals(limitPlain.body)) throw new Error('LIMIT does not send the plain bytes the hit path sends')

    const rounds = options.rounds.nearOff
    // The process's time in GC around each run: a GC-bound mode shows there, a busy machine does not.
    const gcUrl = `${api.refUrl}/bench/gc`
    const r = await measure(
      [
        { key: 'gzip', label: 'hit, near off', url: u.hit, headers: HEADERS.gzip, pid: api.pid, gcUrl },
        { key: 'limit', label: 'LIMIT', url: out.limit.baseUrl, headers: HEADERS.gzip, pid: out.limit.pid },
        { key: 'plain', label: 'hit plain, near off', url: u.hit, headers: HEADERS.plain, pid: api.pid, gcUrl },
        { key: 'limitPlain', label: 'LIMIT plain', url: out.limit.baseUrl, headers: HEADERS.plain, pid: out.limit.pid },
      ],
      rounds,
    )
    const perRound = r.plain!.samples.map((s) => s.rps)
    const spread = Math.max(...perRound) / Math.min(...perRound)
    // CPU/req per round beside it: a GC-bound mode doubles it, while a busy machine moves req/s alone.
    const cpuPerRound = r.plain!.samples.map((s) => s.cpuUs)
    const cpuSpread = Math.max(...cpuPerRound) / Math.min(...cpuPerRound)
    const gcPerRound = r.plain!.samples.map((s) => s.gcShare ?? Number.NaN)
    const stability: Row = {
      scenario: `10. hit, near cache off, plain client: stability over ${rounds} rounds`,
      figure:
        `req/s per round: ${perRound.map(fmtInt).join(', ')}; µs CPU/req: ${cpuPerRound.map(fmtInt).join(', ')} (max/min ${fmtRatio(cpuSpread)}); ` +
        `share of CPU in GC: ${gcPerRound.map((x) => `${(100 * x).toFixed(1)}%`).join(', ')}`,
      reference: 'max / min req/s',
      ratio: fmtRatio(spread),
      target: `<= ${MAX_SPREAD}`,
      verdict: spread <= MAX_SPREAD ? 'pass' : 'FAIL',
      data: { spread, perRound, cpuSpread, cpuPerRound, gcPerRound },
    }
    // The machine's own drift over the same rounds: LIMIT plain's spread, and the hit's per-round ratio to
    // the LIMIT plain run beside it (drift moves both, a GC-bound mode only the hit).
    const limitPerRound = r.limitPlain!.samples.map((s) => s.rps)
    const limitSpread = Math.max(...limitPerRound) / Math.min(...limitPerRound)
    const ratios = perRound.map((rps, i) => rps / limitPerRound[i]!)
    const ratioSpread = Math.max(...ratios) / Math.min(...ratios)
    const drift: Row = {
      scenario: `10. the machine over the same ${rounds} rounds (info)`,
      figure: `LIMIT plain req/s per round: ${limitPerRound.map(fmtInt).join(', ')} (max/min ${fmtRatio(limitSpread)}); hit plain / LIMIT plain per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}`,
      reference: 'max / min of the per-round ratio',
      ratio: fmtRatio(ratioSpread),
      target: 'reported',
      verdict: 'reported',
      data: { limitSpread, limitPerRound, ratioSpread, ratios },
    }
    return [
      throughputRow('10. hit, near cache off, gzip client vs LIMIT', r.gzip!, r.limit!, 0.45),
      throughputRow('10. hit, near cache off, plain client vs LIMIT plain (info)', r.plain!, r.limitPlain!),
      stability,
      drift,
    ]
  },
}
