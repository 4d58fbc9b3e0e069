import { spawn } from 'node:child_process'

const STACK_FLAG = '--local-stack-process'

/** True in the process that runs the stack; false in the thin parent the terminal talks to. */
export const isStackProcess = () => process.argv.includes(STACK_FLAG) || process.platform === 'win32'

/**
 * Re-runs this script in its own process group and relays signals to it, then exits with its code.
 *
 * Why: Ctrl-C signals the terminal's whole foreground group, so redis-server and dynalite would stop
 * at the same moment as the API and worker, which then shut down against a dead Redis. In their own
 * group they hear only the stack process, which stops them in order.
 */
export function relayToOwnProcessGroup(): void {
  const script = process.argv[1]!
  const child = spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2), STACK_FLAG], {
    detached: true,
    // The IPC channel tells the stack process when this parent is gone (it then stops everything).
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => child.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal))
  }
  child.once('exit', (code) => process.exit(code ?? 1))
  child.once('error', (err) => {
    process.stderr.write(`dynacache: could not start the local stack: ${err.message}\n`)
    process.exit(1)
  })
}
