import { SCOPES } from '../shared/access.ts'
import { DEV_KEY_SCOPES, type DevKeys } from './dev-keys.ts'

export interface ServiceLine {
  /** URL or endpoint the API and worker use. */
  url: string
  /** How it is provided, e.g. "embedded redis-server" or "from REDIS_URL". */
  source: string
}

export interface BannerInfo {
  port: number
  redis: ServiceLine
  dynamo: ServiceLine
  ses: ServiceLine
  /** The SES stand-in's web page, when it is embedded. */
  mailViewer: string | undefined
  /** The generated dev keys, or undefined when API_KEYS came from the environment. */
  devKeys: DevKeys | undefined
  keysFile: string
  /** One line about the demo data (seeded now, reused, or not seeded). */
  demo: string
}

/** The "ready" message: where everything is and how to make a first request. */
export function formatBanner(info: BannerInfo): string {
  const api = `http://localhost:${info.port}`
  const readKey = info.devKeys?.keys.read ?? '<a read key from API_KEYS>'
  const adminKey = info.devKeys ? 'the admin key below' : 'an admin key from API_KEYS'
  const row = (label: string, value: string, note = '') => `  ${label.padEnd(13)} ${value}${note ? `   (${note})` : ''}`
  const keyRows = info.devKeys
    ? [
        `  Dev API keys (saved in ${info.keysFile}; delete it for new ones):`,
        ...SCOPES.map((scope) => `    ${scope.padEnd(7)} ${info.devKeys!.keys[scope]}   scopes: ${DEV_KEY_SCOPES[scope].join(', ')}`),
      ]
    : ['  API keys: from API_KEYS in your environment']
  const lines = [
    '',
    '  dynacache local stack is ready',
    '',
    row('API', api),
    row('Console', `${api}/console/`, 'the web console: sign in with a key below'),
    row('Swagger UI', `${api}/docs`),
    row('Bull Board', `${api}/admin/queues`, `HTTP Basic: any user name, password = ${adminKey}`),
    ...(info.mailViewer ? [row('Mail viewer', info.mailViewer, 'the mail the workers send')] : []),
    row('Redis', info.redis.url, info.redis.source),
    row('DynamoDB', info.dynamo.url, info.dynamo.source),
    row('SES', info.ses.url, info.ses.source),
    '',
    ...keyRows,
    '',
    `  ${info.demo}`,
    '',
    '  Try:',
    `    curl -H "Authorization: Bearer ${readKey}" localhost:${info.port}/tables`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ]
  const width = Math.max(...lines.map((l) => l.length))
  const rule = `  ${'='.repeat(Math.min(width, 100) - 2)}`
  return [rule, ...lines, rule, ''].join('\n')
}
