import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'
import { freePort, stopChild } from '../../src/local/services/ports.ts'
import type { Tap } from './tap.ts'
import { sleep, waitFor } from './wait.ts'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const RULES_PATH = join(ROOT, 'ops/prometheus/rules.yml')
export const RULES_TEST_PATH = join(ROOT, 'ops/prometheus/rules.test.yml')
export const DASHBOARD_PATH = join(ROOT, 'ops/grafana/dynacache.json')

const MISSING = "needs Debian's prometheus package (apt-get install -y prometheus: promtool and prometheus); .ci/run installs it"

/** Runs promtool; resolves with its exit code and output whatever the code (rejects only when it cannot start). */
export function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return reject(new Error(`promtool not found: ${MISSING}`))
      resolve({ code: typeof err?.code === 'number' ? err.code : err ? 1 : 0, output: `${stdout}${stderr}` })
    })
  })
}

export interface RuleGroup {
  name: string
  rules: Array<{ record?: string; alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }>
}

/** The rule groups of ops/prometheus/rules.yml. */
export async function loadRules(path = RULES_PATH): Promise<RuleGroup[]> {
  return (YAML.parse(await readFile(path, 'utf8')) as { groups: RuleGroup[] }).groups
}

export interface PanelTarget {
  panel: string
  refId: string
  expr: string
}

/** Every PromQL expression of the dashboard's panels, and its template variables. */
export async function loadDashboard(): Promise<{
  targets: PanelTarget[]
  variables: Array<{ name: string; type: string; query: unknown }>
  raw: Record<string, unknown>
}> {
  const raw = JSON.parse(await readFile(DASHBOARD_PATH, 'utf8')) as {
    panels: Array<{ title: string; type: string; targets?: Array<{ refId: string; expr: string }> }>
    templating: { list: Array<{ name: string; type: string; query: unknown }> }
  }
  const targets = raw.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })))
  return { targets, variables: raw.templating.list, raw: raw as unknown as Record<string, unknown> }
}

/** A dashboard expression as Grafana sends it with every variable on "All". */
export function expandVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m')
    .replace(/\$\{?(job|table|instance)\}?/g, '.*')
}

export interface QueryAnswer {
  status: 'success' | 'error'
  error?: string
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }
}

export interface PrometheusServer {
  readonly url: string
  /** An instant query through the HTTP API (/api/v1/query). */
  query(expr: string): Promise<QueryAnswer>
  /** GET a path of the HTTP API and parse its JSON. */
  get<T = unknown>(path: string): Promise<T>
  output(): string
}

/**
 * A real Prometheus server (Debian's `prometheus` binary) as a child process, scraping one target every
 * second with a Bearer key and evaluating `ruleFiles` every second, its data in a temporary directory.
 * Stopped and cleaned up in teardown.
 */
export async function startPrometheus(t: Tap, opts: { target: string; credentials: string; ruleFiles: string[] }): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'dc-prometheus-'))
  const configPath = join(dir, 'prometheus.yml')
  await writeFile(
    configPath,
    YAML.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: opts.ruleFiles,
      scrape_configs: [
        {
          job_name: 'dynacache-api',
          metrics_path: '/metrics',
          authorization: { credentials: opts.credentials },
          static_configs: [{ targets: [opts.target] }],
        },
      ],
    }),
  )
  let child: ChildProcess | undefined
  let out = ''
  // A test process that ends without its teardown (a tap timeout, a crash) must not leave Prometheus behind.
  const killOnExit = () => child?.kill('SIGKILL')
  process.once('exit', killOnExit)
  t.teardown(async () => {
    if (child) await stopChild(child, 'SIGTERM', 5000)
    process.off('exit', killOnExit)
    await rm(dir, { recursive: true, force: true })
    if (t.passing?.() === false) process.stderr.write(`--- prometheus output, last 4 KB ---\n${out.slice(-4096)}\n--- end prometheus ---\n`)
  })

  // The port was free a moment ago; if another process takes it first, Prometheus exits and we try another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const started = spawn(
      'prometheus',
      [`--config.file=${configPath}`, `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child = started
    started.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    started.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    const failed = new Promise<Error>((resolve) => {
      started.once('error', (err) => resolve(new Error(`prometheus could not start (${err.message}): ${MISSING}`)))
      started.once('exit', (code) => resolve(new Error(`prometheus exited (${code}): ${out.slice(-1000)}`)))
    })
    const ready = waitFor(
      'prometheus /-/ready',
      async () => (started.exitCode === null ? (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok : true),
      30_000,
      100,
    )
    const outcome = await Promise.race([ready.then(() => undefined), failed])
    if (outcome === undefined && started.exitCode === null) {
      const get = async <T>(path: string): Promise<T> => (await (await fetch(`${url}${path}`)).json()) as T
      return {
        url,
        get,
        query: (expr) => get<QueryAnswer>(`/api/v1/query?query=${encodeURIComponent(expr)}`),
        output: () => out,
      }
    }
    if (attempt >= 3 || !/address already in use/.test(out)) throw outcome ?? new Error(`prometheus exited: ${out.slice(-1000)}`)
    await sleep(50)
  }
}

/** The numeric samples of an instant vector answer (empty for an error or no data). */
export function samples(answer: QueryAnswer): Array<{ metric: Record<string, string>; value: number }> {
  if (answer.status !== 'success' || answer.data?.resultType !== 'vector') return []
  return answer.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
}
