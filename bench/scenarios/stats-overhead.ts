import type { Scenario } from './context.ts'
import { check, HEADERS, throughputRow, urls } from './routes.ts'

/** 8. The same hit on two API processes, statistics on and off, measured alternately. */
export const statsOverhead: Scenario = {
  id: '8',
  title: 'statistics overhead',
  target: '>= 0.95x',
  async run({ stack, options, measure }) {
    const { api, apiStatsOff } = stack
    if (!api.ready.stats || apiStatsOff.ready.stats) throw new Error('expected one API with statistics on and one off')
    const on = urls(stack, api).hit
    const off = urls(stack, apiStatsOff).hit
    for (const url of [on, off]) await check('hit', url, HEADERS.gzip, { status: 200, headers: { 'x-cache': 'HIT' } })

    const r = await measure(
      [
        { key: 'on', label: 'stats on', url: on, headers: HEADERS.gzip, pid: api.pid },
        { key: 'off', label: 'stats off', url: off, headers: HEADERS.gzip, pid: apiStatsOff.pid },
      ],
      options.rounds.stats,
    )
    return [throughputRow('8. hit, stats on vs off', r.on!, r.off!, 0.95)]
  },
}
