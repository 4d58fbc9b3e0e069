import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** Lowest port this range gives out: below the kernel's ephemeral range, above the well-known ones. */
const LOWEST = 10_000

/** The first port of the kernel's ephemeral range (Linux; 32768 elsewhere, the usual start). */
function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    return Number.isInteger(low) && low! > 0 ? low! : 32_768
  } catch {
    return 32_768
  }
}

/** Binds and releases `port` on 127.0.0.1 (port 0: the OS picks one); the port bound, or undefined when taken. */
function tryBind(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.on('error', () => resolve(undefined))
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port
      server.close(() => resolve(bound))
    })
  })
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1, for a child process to listen on. Chosen below the
 * kernel's ephemeral range: a port from listen(0) is one the kernel also hands to outgoing connections, and
 * on a busy machine one of those could take it between this check and the child's bind (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  const top = ephemeralStart() - 1
  if (top - LOWEST >= 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = await tryBind(LOWEST + Math.floor(Math.random() * (top - LOWEST + 1)))
      if (port !== undefined) return port
    }
  }
  const picked = await tryBind(0)
  if (picked === undefined) throw new Error('no free TCP port on 127.0.0.1')
  return picked
}

/** Resolves once a child process prints a line matching `ready`, rejects if it exits first. */
export function waitForOutput(child: import('node:child_process').ChildProcess, ready: RegExp, what: string, timeoutMs = 15000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => done(new Error(`${what} did not start within ${timeoutMs} ms: ${seen.slice(-500)}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      if (ready.test(seen)) done()
    }
    const onExit = (code: number | null) => done(new Error(`${what} exited (${code}) before it was ready: ${seen.slice(-500)}`))
    function done(err?: Error) {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      if (err) reject(err)
      else resolve()
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Sends a signal and waits for the process to exit (SIGKILL after `graceMs`). */
export async function stopChild(child: import('node:child_process').ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}
