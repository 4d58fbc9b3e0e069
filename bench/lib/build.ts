import { spawn } from 'node:child_process'
import { cpSync, existsSync, statSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Under bench/results/ (git-ignored); node_modules resolve from there as they do from dist/. */
const RESULTS = join(ROOT, 'bench', 'results')
const OUT_DIR = join(RESULTS, 'build')
const TSCONFIG = join(RESULTS, 'tsconfig.bench-build.json')

/** How the worker processes and the bare client of scenarios 6 and 7 are run. */
export interface Entries {
  /** node arguments of src/workers/main.ts and of bench/lib/bare-client.ts. */
  worker: string[]
  bare: string[]
  /** For the report. */
  runtime: 'compiled' | 'tsx'
  /** Why tsx was used instead of a build, if it was. */
  note?: string
}

const TSX: Entries = {
  worker: ['--import=tsx', 'src/workers/main.ts'],
  bare: ['--import=tsx', 'bench/lib/bare-client.ts'],
  runtime: 'tsx',
}

let building: Promise<Entries> | undefined

/**
 * The worker entry point as production runs it (`npm run start:worker` runs compiled JS, no TypeScript
 * loader), and the bare client compiled the same way so both sides are alike: compiled with the
 * project's compiler options into bench/results/build once per run, so it always matches the working
 * tree and never touches dist/ (others may be using it). tsx alone adds ~50 MB to a process's resident
 * set, which would distort the RSS figures of scenario 6. BENCH_WORKER=tsx skips the build; a failed
 * build falls back to tsx, said in the rows.
 */
export function entries(log: (line: string) => void): Promise<Entries> {
  building ??= build(log)
  return building
}

async function build(log: (line: string) => void): Promise<Entries> {
  if (process.env.BENCH_WORKER === 'tsx') return { ...TSX, note: 'BENCH_WORKER=tsx' }
  const t0 = performance.now()
  await rm(OUT_DIR, { recursive: true, force: true })
  await mkdir(RESULTS, { recursive: true })
  await writeFile(
    TSCONFIG,
    `${JSON.stringify(
      {
        extends: '../../tsconfig.json',
        compilerOptions: { rootDir: '../..', outDir: './build', noEmit: false, sourceMap: false },
        include: ['../../src', '../../bench/lib/bare-client.ts'],
      },
      null,
      2,
    )}\n`,
  )
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', TSCONFIG], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr.on('data', (c: Buffer) => (output += c.toString()))
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null))
    child.once('exit', resolve)
  })
  const worker = join(OUT_DIR, 'src', 'workers', 'main.js')
  const bare = join(OUT_DIR, 'bench', 'lib', 'bare-client.js')
  if (code !== 0 || !existsSync(worker) || !existsSync(bare)) {
    log(`  compiling for the worker processes failed (tsc exit ${code}), running them with tsx: ${output.trim().split('\n').slice(0, 3).join(' | ')}`)
    return { ...TSX, note: `build failed (tsc exit ${code})` }
  }
  // tsc emits no assets: the Lua scripts src/shared/redis/scripts.ts reads beside it are copied as they are.
  cpSync(join(ROOT, 'src'), join(OUT_DIR, 'src'), { recursive: true, filter: (p) => p.endsWith('.lua') || statSync(p).isDirectory() })
  log(`  compiled src and the bare client in ${((performance.now() - t0) / 1000).toFixed(1)} s (${OUT_DIR})`)
  return { worker: [worker], bare: [bare], runtime: 'compiled' }
}
