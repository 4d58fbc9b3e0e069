/** Undo steps for everything the benchmark started, run newest first, once, whatever went wrong. */
export interface Cleanup {
  /** Registers an undo step; the returned function drops it (the thing was stopped already). */
  add(name: string, undo: () => Promise<void> | void): () => void
  /** Runs every step (each bounded in time); later calls wait for the first. */
  run(): Promise<void>
}

const STEP_TIMEOUT_MS = 10_000

export function createCleanup(log: (line: string) => void): Cleanup {
  const steps = new Map<number, { name: string; undo: () => Promise<void> | void }>()
  let next = 0
  let running: Promise<void> | undefined

  async function runAll() {
    for (const id of [...steps.keys()].reverse()) {
      const step = steps.get(id)!
      steps.delete(id)
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          Promise.resolve().then(step.undo),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('timed out')), STEP_TIMEOUT_MS)
          }),
        ])
      } catch (err) {
        log(`cleanup: ${step.name} failed: ${(err as Error).message}`)
      } finally {
        clearTimeout(timer)
      }
    }
  }

  return {
    add(name, undo) {
      const id = next++
      steps.set(id, { name, undo })
      return () => void steps.delete(id)
    },
    run() {
      running ??= runAll()
      return running
    },
  }
}
