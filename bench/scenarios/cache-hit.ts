import type { Series } from '../lib/measure.ts'
import { outside } from '../lib/outside.ts'
import type { Scenario } from './context.ts'
import { check, HEADERS, skippedRow, throughputRow, urls } from './routes.ts'

const NGINX_ROW = (client: string) => `nginx proxy_cache in front of the naive route, ${client} client`

/**
 * 1. The hit path sends the stored gzip bytes as they are. Measured against the outside world: LIMIT
 * (a bare node:http process sending a precomputed Buffer of the same bytes) and nginx proxy_cache in
 * front of the naive route (when nginx is installed); LIMIT sending the hit's own headers too, the
 * in-app ceiling, the naive route (100- and 1,000-item pages) and Redis GET + send are reported beside
 * them.
 */
export const cacheHitGzip: Scenario = {
  id: '1',
  title: 'cache hit, gzip client',
  target: '>= 0.6x LIMIT, above nginx proxy_cache',
  async run({ stack, options, measure, cleanup, log }) {
    const { api, page } = stack
    const u = urls(stack)
    const out = await outside(stack, cleanup, log)
    const gzipBody = { 'content-encoding': 'gzip' }
    const hit = await check('hit', u.hit, HEADERS.gzip, { status: 200, headers: { ...gzipBody, 'x-cache': 'HIT' } })
    const limit = await check('LIMIT', out.limit.baseUrl, HEADERS.gzip, { status: 200, headers: gzipBody })
    if (!hit.body.equals(limit.body)) throw new Error('LIMIT does not send the bytes the hit path sends')
    const sameHeaders = await check("LIMIT (the hit's headers)", out.limitSameHeaders.baseUrl, HEADERS.gzip, {
      status: 200,
      headers: { ...gzipBody, 'x-cache': 'HIT' },
    })
    if (!hit.body.equals(sameHeaders.body)) throw new Error("LIMIT with the hit's headers does not send the bytes the hit path sends")
    const ceiling = await check('ceiling', u.ceiling, HEADERS.gzip, { status: 200, headers: gzipBody })
    if (!hit.body.equals(ceiling.body)) throw new Error('the ceiling does not send the bytes the hit path sends')
    await check('naive', u.naive, HEADERS.gzip, { status: 200, headers: { 'content-encoding': undefined } })
    await check('naive 1,000', u.naiveLarge, HEADERS.gzip, { status: 200, headers: { 'content-encoding': undefined } })
    await check('hit 1,000', u.hitLarge, HEADERS.gzip, { status: 200, headers: { ...gzipBody, 'x-cache': 'HIT' } })
    const redisBytes = await check('redis-bytes', u.redisBytes, HEADERS.gzip, { status: 200, headers: gzipBody })
    if (!redisBytes.body.equals(hit.body)) throw new Error('redis-bytes does not send the bytes the hit path sends')
    const nginx = 'skipped' in out.nginx ? undefined : out.nginx
    if (nginx) await check('nginx', `${nginx.baseUrl}/bench/naive`, HEADERS.gzip, { status: 200, headers: gzipBody })

    const series: Series[] = [
      { key: 'hit', label: 'hit', url: u.hit, headers: HEADERS.gzip, pid: api.pid },
      { key: 'limit', label: 'LIMIT', url: out.limit.baseUrl, headers: HEADERS.gzip, pid: out.limit.pid },
      { key: 'limitSameHeaders', label: "LIMIT, hit's headers", url: out.limitSameHeaders.baseUrl, headers: HEADERS.gzip, pid: out.limitSameHeaders.pid },
      ...(nginx ? [{ key: 'nginx', label: 'nginx', url: `${nginx.baseUrl}/bench/naive`, headers: HEADERS.gzip, pid: nginx.pid }] : []),
      { key: 'ceiling', label: 'in-app ceiling', url: u.ceiling, headers: HEADERS.gzip, pid: api.pid },
      { key: 'naive', label: 'naive 100', url: u.naive, headers: HEADERS.gzip, pid: api.pid },
      { key: 'hitLarge', label: 'hit 1,000', url: u.hitLarge, headers: HEADERS.gzip, pid: api.pid },
      { key: 'naiveLarge', label: 'naive 1,000', url: u.naiveLarge, headers: HEADERS.gzip, pid: api.pid },
      { key: 'redisBytes', label: 'redis GET+send', url: u.redisBytes, headers: HEADERS.gzip, pid: api.pid },
    ]
    const r = await measure(series, options.rounds.hit)
    const bytes = { json: page.bytes, gzip: page.gzipBytes, items: page.items }
    const vsLimit = throughputRow('1. hit, gzip client vs LIMIT (bare node:http)', r.hit!, r.limit!, 0.6)
    return [
      { ...vsLimit, data: { ...vsLimit.data, page: bytes } },
      nginx
        ? throughputRow('1. hit, gzip client vs nginx proxy_cache', r.hit!, r.nginx!, 1)
        : skippedRow(`1. ${NGINX_ROW('gzip')}`, (out.nginx as { skipped: string }).skipped, '>= 1x'),
      ...(nginx ? [throughputRow('1. nginx proxy_cache vs LIMIT (info)', r.nginx!, r.limit!)] : []),
      // What Node itself costs for the headers the hit must send (rate limit, cache, security), and the
      // hit against the same response bytes: what is left is the app's own work per request.
      throughputRow("1. LIMIT with the hit's headers vs LIMIT (info)", r.limitSameHeaders!, r.limit!),
      throughputRow("1. hit vs LIMIT with the hit's headers (info)", r.hit!, r.limitSameHeaders!),
      throughputRow('1. hit vs in-app ceiling (info)', r.hit!, r.ceiling!),
      throughputRow('1. hit vs naive, 100-item page (info)', r.hit!, r.naive!),
      throughputRow(`1. hit vs naive, ${stack.largePage.items}-item page (info)`, r.hitLarge!, r.naiveLarge!),
      throughputRow('1. hit vs Redis GET + send (info)', r.hit!, r.redisBytes!),
    ]
  },
}

/** 2. A client without gzip: the hit path sends the plain bytes; LIMIT, nginx and the ceiling send theirs. */
export const cacheHitPlain: Scenario = {
  id: '2',
  title: 'cache hit, plain client',
  target: '>= 0.5x LIMIT',
  async run({ stack, options, measure, cleanup, log }) {
    const { api } = stack
    const u = urls(stack)
    const out = await outside(stack, cleanup, log)
    const plainBody = { 'content-encoding': undefined }
    const hit = await check('hit (plain)', u.hit, HEADERS.plain, { status: 200, headers: { ...plainBody, 'x-cache': 'HIT' } })
    const limit = await check('LIMIT (plain)', out.limit.baseUrl, HEADERS.plain, { status: 200, headers: plainBody })
    if (!hit.body.equals(limit.body)) throw new Error('LIMIT does not send the plain bytes the hit path sends')
    const ceiling = await check('ceiling (plain)', u.ceiling, HEADERS.plain, { status: 200, headers: plainBody })
    if (!hit.body.equals(ceiling.body)) throw new Error('the plain ceiling does not send the bytes the hit path sends')
    const nginx = 'skipped' in out.nginx ? undefined : out.nginx
    if (nginx) await check('nginx (plain)', `${nginx.baseUrl}/bench/naive`, HEADERS.plain, { status: 200, headers: plainBody })

    const r = await measure(
      [
        { key: 'hit', label: 'hit plain', url: u.hit, headers: HEADERS.plain, pid: api.pid },
        { key: 'limit', label: 'LIMIT plain', url: out.limit.baseUrl, headers: HEADERS.plain, pid: out.limit.pid },
        ...(nginx ? [{ key: 'nginx', label: 'nginx plain', url: `${nginx.baseUrl}/bench/naive`, headers: HEADERS.plain, pid: nginx.pid }] : []),
        { key: 'ceiling', label: 'ceiling plain', url: u.ceiling, headers: HEADERS.plain, pid: api.pid },
      ],
      options.rounds.plain,
    )
    return [
      throughputRow('2. hit, plain client vs LIMIT plain', r.hit!, r.limit!, 0.5),
      nginx
        ? throughputRow('2. hit, plain client vs nginx proxy_cache (info)', r.hit!, r.nginx!)
        : skippedRow(`2. ${NGINX_ROW('plain')}`, (out.nginx as { skipped: string }).skipped),
      throughputRow('2. hit plain vs in-app plain ceiling (info)', r.hit!, r.ceiling!),
    ]
  },
}
