import { Agent, type IncomingHttpHeaders, request } from 'node:http'

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body as sent (still gzip when the server compressed it). */
  body: Buffer
  ms: number
}

/** One request to 127.0.0.1 (with `body`, if given, sent as is); the body is returned raw, never decompressed. */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: Agent; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const target = new URL(url)
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(options.agent ? { agent: options.agent } : {}),
        timeout: options.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - t0 }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 15_000} ms: ${url}`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** A keep-alive agent that holds up to `sockets` connections to one server. */
export const keepAliveAgent = (sockets: number) => new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })

/** Checks that a response is what a scenario is about to measure; throws with what differed. */
export async function expectResponse(
  what: string,
  url: string,
  headers: Record<string, string>,
  expected: { status: number; headers?: Record<string, string | undefined> },
): Promise<HttpResponse> {
  const res = await httpRequest(url, { headers })
  const problems: string[] = []
  if (res.status !== expected.status) problems.push(`status ${res.status}, expected ${expected.status}`)
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    const got = res.headers[name]
    if (got !== value) problems.push(`${name}: ${got ?? '(absent)'}, expected ${value ?? '(absent)'}`)
  }
  if (problems.length > 0) {
    throw new Error(`${what} (${url}): ${problems.join('; ')}; body: ${res.body.subarray(0, 200).toString()}`)
  }
  return res
}
