import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, stopChild, waitForOutput } from '../../src/local/services/ports.ts'
import type { Cleanup } from './cleanup.ts'
import { httpRequest } from './http.ts'
import { type ApiProcess, type BenchStack, bearer } from './stack.ts'
import { childPids, startWatchdog } from './watchdog.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A process outside dynacache that a scenario measures against: where it answers, whose CPU it uses. */
export interface OutsideTarget {
  baseUrl: string
  pid: number
}

export interface Outside {
  /** bench/limit-server.ts: bare node:http, precomputed Buffers of the hot page (LIMIT = 1.00). */
  limit: OutsideTarget
  /** LIMIT sending the hit's own headers too (rate limit, cache, security): the same response bytes. */
  limitSameHeaders: OutsideTarget
  /** nginx proxy_cache in front of the API's /bench/naive routes; a reason when it could not run. */
  nginx: OutsideTarget | { skipped: string }
}

let started: Promise<Outside> | undefined

/** Starts LIMIT and nginx once per run (the first scenario that needs them); stopped by the cleanup. */
export function outside(stack: BenchStack, cleanup: Cleanup, log: (line: string) => void): Promise<Outside> {
  started ??= startOutside(stack, cleanup, log)
  return started
}

async function startOutside(stack: BenchStack, cleanup: Cleanup, log: (line: string) => void): Promise<Outside> {
  const limit = await startLimit(stack, cleanup, false)
  log(`LIMIT (bare node:http) on ${limit.baseUrl}`)
  const limitSameHeaders = await startLimit(stack, cleanup, true)
  log(`LIMIT with the hit's headers on ${limitSameHeaders.baseUrl}`)
  let nginx: Outside['nginx']
  try {
    nginx = await startNginx(stack.api, stack.scratchDir, cleanup)
    log(`nginx proxy_cache on ${nginx.baseUrl} in front of ${stack.api.refUrl}/bench/naive`)
  } catch (err) {
    nginx = { skipped: (err as Error).message }
    log(`nginx rows skipped: ${nginx.skipped}`)
  }
  return { limit, limitSameHeaders, nginx }
}

/** Headers LIMIT sets itself, or Node does: not copied from the hit's answer. */
const OWN_HEADERS = new Set(['date', 'connection', 'keep-alive', 'content-type', 'etag', 'vary', 'content-encoding', 'content-length'])

/**
 * Fetches the page exactly as the hit path sends it and hands those bytes to a LIMIT process; with
 * `sameHeaders`, the hit's other headers too (their values as this one answer had them).
 */
async function startLimit(stack: BenchStack, cleanup: Cleanup, sameHeaders: boolean): Promise<OutsideTarget> {
  const url = `${stack.api.baseUrl}${stack.page.url}`
  const auth = { authorization: bearer('read') }
  const [gz, plain] = await Promise.all([httpRequest(url, { headers: { ...auth, 'accept-encoding': 'gzip' } }), httpRequest(url, { headers: auth })])
  if (gz.status !== 200 || plain.status !== 200) throw new Error(`LIMIT: GET ${url} answered ${gz.status} / ${plain.status}`)
  const dir = join(stack.scratchDir, sameHeaders ? 'limit-same-headers' : 'limit')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'page.gz'), gz.body)
  writeFileSync(join(dir, 'page.json'), plain.body)
  const extra = Object.entries(gz.headers).flatMap(([name, value]) => (OWN_HEADERS.has(name) || value === undefined ? [] : [[name, String(value)]]))
  writeFileSync(join(dir, 'headers.json'), JSON.stringify(sameHeaders ? extra : []))
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, ['--import=tsx', 'bench/limit-server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LIMIT_PORT: String(port),
      LIMIT_GZIP: join(dir, 'page.gz'),
      LIMIT_PLAIN: join(dir, 'page.json'),
      LIMIT_ETAG: String(gz.headers.etag ?? stack.page.etag),
      LIMIT_HEADERS: join(dir, 'headers.json'),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const name = sameHeaders ? "LIMIT (the hit's headers)" : 'LIMIT server'
  cleanup.add(name, () => stopChild(child, 'SIGTERM', 2000))
  await waitForOutput(child, /LIMIT_READY/, name, 30_000)
  return { baseUrl: `http://127.0.0.1:${port}`, pid: child.pid! }
}

function nginxBinary(): string {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    try {
      execFileSync(candidate, ['-v'], { stdio: 'ignore' })
      return candidate
    } catch {
      // not this one
    }
  }
  throw new Error('nginx is not installed (apt-get install -y nginx)')
}

/**
 * One nginx worker caching the naive route (which itself does Redis GET + gunzip + JSON.parse): what an
 * ops team gets by putting nginx in front of the simplest app. Entries are fresh for 1 s, refreshed in
 * the background while the stale one is served (use_stale updating), one upstream request per miss
 * (proxy_cache_lock); gzip on, compressing on the fly at nginx's default level 1.
 */
async function startNginx(api: ApiProcess, scratchDir: string, cleanup: Cleanup): Promise<OutsideTarget> {
  const bin = nginxBinary()
  const dir = join(scratchDir, 'nginx')
  mkdirSync(join(dir, 'cache'), { recursive: true })
  const port = await freePort()
  const upstream = new URL(api.refUrl).host
  const root = process.getuid?.() === 0 ? 'user root;\n' : ''
  const conf = `${root}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:10m max_size=100m inactive=10m use_temp_path=off;
  gzip on;
  gzip_types application/json;
  gzip_proxied any;
  gzip_vary on;
  upstream api { server ${upstream}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location /bench/ {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Accept-Encoding "";
      proxy_cache bench;
      proxy_cache_key $request_uri;
      proxy_cache_valid 200 1s;
      proxy_cache_lock on;
      proxy_cache_use_stale updating;
      proxy_cache_background_update on;
      proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;
      add_header X-Proxy-Cache $upstream_cache_status;
    }
  }
}
`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const child: ChildProcess = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  cleanup.add('nginx', () => stopChild(child, 'SIGQUIT', 3000))
  let output = ''
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${output.slice(-300)}`)
    try {
      await httpRequest(`${base}/bench/none`, { timeoutMs: 1000 })
      break
    } catch (err) {
      if (i > 50) throw new Error(`nginx did not answer: ${(err as Error).message}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  // The worker does the work: its CPU is what the rows charge.
  const worker = childPids(child.pid!)[0] ?? child.pid!
  startWatchdog(cleanup, [child.pid!, worker])
  return { baseUrl: base, pid: worker }
}
