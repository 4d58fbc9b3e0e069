import type { Server } from 'node:http'
import { freePort } from './ports.ts'

export interface LocalSes {
  /** The SES API endpoint; the same address serves the mail viewer page and GET /store. */
  readonly endpoint: string
  stop(): Promise<void>
}

/** aws-ses-v2-local in this process (it starts in milliseconds and does little work). */
export async function startSes(options: { port?: number; host?: string } = {}): Promise<LocalSes> {
  const port = options.port ?? (await freePort())
  const host = options.host ?? '127.0.0.1'
  const mod = (await import('aws-ses-v2-local')) as unknown as { default: { default?: unknown } | unknown }
  const start = ((mod.default as { default?: unknown }).default ?? mod.default) as (c: { port: number; host: string }) => Promise<Server>
  const server = await start({ port, host })
  return {
    endpoint: `http://${host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}
