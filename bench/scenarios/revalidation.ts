import { outside } from '../lib/outside.ts'
import type { Scenario } from './context.ts'
import { check, HEADERS, throughputRow, urls } from './routes.ts'

/**
 * 3. If-None-Match with the page's ETag: the store compares ETags and skips the body. The target
 * compares with LIMIT serving the page (gzip 200); rows for information compare with LIMIT's own 304
 * and with the in-app ceiling's.
 */
export const revalidation: Scenario = {
  id: '3',
  title: '304 revalidation',
  target: '>= 0.65x LIMIT',
  async run({ stack, options, measure, cleanup, log }) {
    const { api, page } = stack
    const u = urls(stack)
    const out = await outside(stack, cleanup, log)
    const inm = HEADERS.revalidate(page.etag)
    await check('hit 304', u.hit, inm, { status: 304, headers: { 'x-cache': 'HIT' } })
    await check('LIMIT 304', out.limit.baseUrl, inm, { status: 304 })
    await check('LIMIT', out.limit.baseUrl, HEADERS.gzip, { status: 200, headers: { 'content-encoding': 'gzip' } })
    await check('ceiling 304', u.ceiling, inm, { status: 304 })

    const r = await measure(
      [
        { key: 'hit304', label: 'hit 304', url: u.hit, headers: inm, pid: api.pid },
        { key: 'limit', label: 'LIMIT', url: out.limit.baseUrl, headers: HEADERS.gzip, pid: out.limit.pid },
        { key: 'limit304', label: 'LIMIT 304', url: out.limit.baseUrl, headers: inm, pid: out.limit.pid },
        { key: 'ceiling304', label: 'ceiling 304', url: u.ceiling, headers: inm, pid: api.pid },
      ],
      options.rounds.revalidate,
    )
    return [
      throughputRow('3. 304 vs LIMIT (gzip 200)', r.hit304!, r.limit!, 0.65),
      throughputRow('3. 304 vs LIMIT 304 (info)', r.hit304!, r.limit304!),
      throughputRow('3. 304 vs in-app ceiling 304 (info)', r.hit304!, r.ceiling304!),
    ]
  },
}
