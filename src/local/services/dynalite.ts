import { type ChildProcess, spawn } from 'node:child_process'
import { freePort, stopChild, waitForOutput } from './ports.ts'

export interface LocalDynamo {
  readonly endpoint: string
  readonly port: number
  stop(): Promise<void>
  kill(): Promise<void>
  start(): Promise<void>
}

// Run as a child process: in-process dynalite shares (and slows) the caller's event loop.
const CHILD_SOURCE = `
const dynalite = require('dynalite')
const [port, path] = [Number(process.argv[1]), process.argv[2] || undefined]
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) })
// Idle keep-alive sockets stay open 10 minutes, not Node's 5 s: the SDK's agent reuses idle sockets with
// no timeout of its own, and one reused just as the server closes it fails with "socket hang up".
server.keepAliveTimeout = 10 * 60 * 1000
server.listen(port, '127.0.0.1', () => console.log('dynalite ready on ' + port))
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('disconnect', stop)
`

/** dynalite as a child process on a free port; `path` persists its data, in memory otherwise. */
export async function startDynalite(options: { path?: string; port?: number; cwd?: string } = {}): Promise<LocalDynamo> {
  const port = options.port ?? (await freePort())
  let child: ChildProcess | undefined
  const start = async () => {
    const proc = spawn(process.execPath, ['-e', CHILD_SOURCE, String(port), options.path ?? ''], {
      cwd: options.cwd ?? process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = proc
    await waitForOutput(proc, /dynalite ready/, `dynalite on ${port}`)
  }
  await start()
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    start,
    stop: () => (child ? stopChild(child, 'SIGTERM') : Promise.resolve()),
    kill: () => (child ? stopChild(child, 'SIGKILL') : Promise.resolve()),
  }
}
