/**
 * Profiles the hit path: starts the bench stack with the API processes under `--cpu-prof`, puts wrk load
 * on one route for a while, stops everything (the profiles are written on exit) and prints the
 * functions with the most self time. A development tool, not part of `npm run bench`.
 *   node --import=tsx bench/profile-hit.ts [gzip|plain|304|ceiling] [seconds] [outdir]
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createCleanup } from './lib/cleanup.ts'
import { startStack } from './lib/stack.ts'
import { HEADERS, urls } from './scenarios/routes.ts'

const [mode = 'gzip', seconds = '10', outDir = `/tmp/dynacache-prof-${Date.now()}`] = process.argv.slice(2)
mkdirSync(outDir, { recursive: true })
process.env.BENCH_API_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${outDir}`
const log = (line: string) => process.stderr.write(`[profile] ${line}\n`)
const cleanup = createCleanup(log)
// The load's span on the monotonic clock the profile's timestamps use (µs): start-up is left out.
const window = { start: 0n, end: 0n }
try {
  const stack = await startStack(cleanup, 100, log)
  const u = urls(stack)
  const url = mode === 'ceiling' ? u.ceiling : u.hit
  const headers: Record<string, string> = mode === 'plain' ? HEADERS.plain : mode === '304' ? HEADERS.revalidate(stack.page.etag) : HEADERS.gzip
  const args = ['-t1', '-c50', `-d${seconds}s`, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url]
  window.start = process.hrtime.bigint() / 1000n
  log(execFileSync('wrk', args).toString())
  window.end = process.hrtime.bigint() / 1000n
} finally {
  await cleanup.run()
}

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
// The stats-on process is started first: its profile is the older file.
const files = readdirSync(outDir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .sort()
const profile = JSON.parse(readFileSync(join(outDir, files[0]!), 'utf8')) as {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const name = (n: Node) => {
  const f = n.callFrame
  return `${f.functionName || '(anon)'} ${f.url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*\/work\/main\//, '')}`
}
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
let total = 0
let t = profile.startTime
for (const [i, id] of profile.samples.entries()) {
  t += profile.timeDeltas[i]!
  if (BigInt(Math.round(t)) < window.start || BigInt(Math.round(t)) > window.end) continue
  total++
  const leaf = byId.get(id)!
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1)
  const seen = new Set<string>()
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) seen.add(name(byId.get(n)!))
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + 1)
}
const print = (title: string, m: Map<string, number>, count: number) => {
  process.stdout.write(`${title} (% of ${total} samples during the load)\n`)
  for (const [key, n] of [...m].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    process.stdout.write(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}\n`)
  }
}
print('self time', self, 70)
print('inclusive time', inclusive, 70)
process.stdout.write(`profile: ${join(outDir, files[0]!)}\n`)
