import type { Scenario } from './context.ts'
import { check, HEADERS, throughputRow, urls } from './routes.ts'

/**
 * 1. The hit path sends the stored gzip bytes as they are: compare with memory and with the naive
 * design (the targets), and, for scale, with the least any Redis-backed hit can do (one GET, send).
 */
export const cacheHitGzip: Scenario = {
  id: '1',
  title: 'cache hit, 20 KB page, gzip client',
  target: '>= 0.6x ceiling, >= 5x naive',
  async run({ stack, options, measure }) {
    const { api, page } = stack
    const u = urls(stack)
    const gzipBody = { 'content-encoding': 'gzip' }
    const hit = await check('hit', u.hit, HEADERS.gzip, { status: 200, headers: { ...gzipBody, 'x-cache': 'HIT' } })
    const ceiling = await check('ceiling', u.ceiling, HEADERS.gzip, { status: 200, headers: gzipBody })
    if (!hit.body.equals(ceiling.body)) throw new Error('the ceiling does not send the bytes the hit path sends')
    await check('naive', u.naive, HEADERS.gzip, { status: 200, headers: { 'content-encoding': undefined } })
    const redisBytes = await check('redis-bytes', u.redisBytes, HEADERS.gzip, { status: 200, headers: gzipBody })
    if (!redisBytes.body.equals(hit.body)) throw new Error('redis-bytes does not send the bytes the hit path sends')

    const r = await measure(
      [
        { key: 'hit', label: 'hit', url: u.hit, headers: HEADERS.gzip, pid: api.pid },
        { key: 'ceiling', label: 'ceiling', url: u.ceiling, headers: HEADERS.gzip, pid: api.pid },
        { key: 'naive', label: 'naive', url: u.naive, headers: HEADERS.gzip, pid: api.pid },
        { key: 'redisBytes', label: 'redis GET+send', url: u.redisBytes, headers: HEADERS.gzip, pid: api.pid },
      ],
      options.rounds.hit,
    )
    const bytes = { json: page.bytes, gzip: page.gzipBytes, items: page.items }
    const vsCeiling = throughputRow('1. hit, gzip client vs ceiling', r.hit!, r.ceiling!, 0.6)
    const vsNaive = throughputRow('1. hit, gzip client vs naive', r.hit!, r.naive!, 5)
    const vsRedis = throughputRow('1. hit vs Redis GET + send (info)', r.hit!, r.redisBytes!)
    return [
      { ...vsCeiling, data: { ...vsCeiling.data, page: bytes } },
      { ...vsNaive, data: { ...vsNaive.data, page: bytes } },
      vsRedis,
    ]
  },
}

/** 2. A client without gzip: the hit path gunzips the stored bytes; the ceiling sends plain bytes. */
export const cacheHitPlain: Scenario = {
  id: '2',
  title: 'cache hit, plain client',
  target: 'reported',
  async run({ stack, options, measure }) {
    const { api } = stack
    const u = urls(stack)
    const plainBody = { 'content-encoding': undefined }
    const hit = await check('hit (plain)', u.hit, HEADERS.plain, { status: 200, headers: { ...plainBody, 'x-cache': 'HIT' } })
    const ceiling = await check('ceiling (plain)', u.ceiling, HEADERS.plain, { status: 200, headers: plainBody })
    if (!hit.body.equals(ceiling.body)) throw new Error('the plain ceiling does not send the bytes the hit path sends')

    const r = await measure(
      [
        { key: 'hit', label: 'hit plain', url: u.hit, headers: HEADERS.plain, pid: api.pid },
        { key: 'ceiling', label: 'ceiling plain', url: u.ceiling, headers: HEADERS.plain, pid: api.pid },
      ],
      options.rounds.plain,
    )
    return [throughputRow('2. hit, plain client vs plain ceiling', r.hit!, r.ceiling!)]
  },
}
