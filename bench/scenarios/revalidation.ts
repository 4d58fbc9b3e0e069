import type { Scenario } from './context.ts'
import { check, HEADERS, throughputRow, urls } from './routes.ts'

/**
 * 3. If-None-Match with the page's ETag: the store compares ETags in Redis and skips the body. The
 * target compares with the ceiling serving the page (gzip 200); a second row, for information only,
 * compares with an in-memory 304 (the ceiling route answering the same If-None-Match).
 */
export const revalidation: Scenario = {
  id: '3',
  title: '304 revalidation',
  target: '>= 0.9x ceiling',
  async run({ stack, options, measure }) {
    const { api, page } = stack
    const u = urls(stack)
    const inm = HEADERS.revalidate(page.etag)
    await check('hit 304', u.hit, inm, { status: 304, headers: { 'x-cache': 'HIT' } })
    await check('ceiling 304', u.ceiling, inm, { status: 304 })
    await check('ceiling', u.ceiling, HEADERS.gzip, { status: 200, headers: { 'content-encoding': 'gzip' } })

    const r = await measure(
      [
        { key: 'hit304', label: 'hit 304', url: u.hit, headers: inm, pid: api.pid },
        { key: 'ceiling', label: 'ceiling', url: u.ceiling, headers: HEADERS.gzip, pid: api.pid },
        { key: 'ceiling304', label: 'ceiling 304', url: u.ceiling, headers: inm, pid: api.pid },
      ],
      options.rounds.revalidate,
    )
    return [
      throughputRow('3. 304 vs ceiling (gzip 200)', r.hit304!, r.ceiling!, 0.9),
      throughputRow('3. 304 vs in-memory 304 (info)', r.hit304!, r.ceiling304!),
    ]
  },
}
