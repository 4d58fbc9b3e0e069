import { createServer } from 'node:net'
import { freePort } from './services/ports.ts'

/** `port` when nothing listens on it (on any address), else a free port the OS picks. */
export async function friendlyPort(port: number): Promise<number> {
  return (await isFree(port)) ? port : freePort()
}

// Listening without a host binds every address, so a service on 127.0.0.1 or ::1 alone counts as taken.
export function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, () => server.close(() => resolve(true)))
  })
}
