import { open, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * One local stack per data folder. Two stacks on one `.data` would fight over dynalite's LevelDB files
 * and the dev keys; a stack started while the previous one is still stopping would find the data
 * folder locked and fail with a connection error that explains nothing. The lock file says which
 * process owns the folder and whether it is running or stopping: a new start refuses a running owner
 * in one line, waits for a stopping one, and takes over from one that died without cleaning up.
 */
export interface StackLock {
  /** Tells later starts that this stack is stopping (they wait instead of refusing). */
  markStopping(): Promise<void>
  /** Frees the folder; call when everything this stack started has stopped. */
  release(): Promise<void>
}

interface Owner {
  pid: number
  state: 'running' | 'stopping'
}

export class StackBusyError extends Error {
  override name = 'StackBusyError'
}

export interface AcquireOptions {
  /** How long to wait for a stopping stack to finish (ms). */
  waitMs?: number
  /** Told once when this start waits for a stopping stack. */
  onWait?(pid: number): void
  /** Whether a process is alive (tests replace it). */
  isAlive?(pid: number): boolean
}

export const LOCK_FILE = 'stack.lock'

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, 'utf8')) as Owner
    return Number.isInteger(owner.pid) ? owner : undefined
  } catch {
    return undefined
  }
}

export async function acquireStackLock(dataDir: string, options: AcquireOptions = {}): Promise<StackLock> {
  const path = join(dataDir, LOCK_FILE)
  const isAlive = options.isAlive ?? processAlive
  const deadline = Date.now() + (options.waitMs ?? 60_000)
  let waiting = false
  const write = (state: Owner['state']) => writeFile(path, JSON.stringify({ pid: process.pid, state } satisfies Owner))

  for (;;) {
    try {
      // 'wx' fails if the file exists: of two starts at the same moment, exactly one creates it.
      const handle = await open(path, 'wx')
      await handle.writeFile(JSON.stringify({ pid: process.pid, state: 'running' } satisfies Owner))
      await handle.close()
      return {
        markStopping: () => write('stopping').catch(() => {}),
        release: () => unlink(path).catch(() => {}),
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = await readOwner(path)
    if (owner && !isAlive(owner.pid)) {
      // Its owner died without cleaning up (SIGKILL, a crash): the folder is free.
      await unlink(path).catch(() => {})
      continue
    }
    if (owner?.state === 'running') {
      throw new StackBusyError(
        `another local stack (pid ${owner.pid}) is running on this folder (${dataDir}); stop it first (Ctrl-C in its terminal), or start this one in another folder`,
      )
    }
    // Stopping, or a file still being written: wait for it.
    if (Date.now() > deadline) {
      throw new StackBusyError(`the local stack (pid ${owner?.pid ?? '?'}) using ${dataDir} did not finish stopping in time; try again once it has`)
    }
    if (owner && !waiting) {
      waiting = true
      options.onWait?.(owner.pid)
    }
    await pause(100)
  }
}
