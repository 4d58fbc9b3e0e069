/**
 * SIGKILL of a worker process while it sends an email. The other kills of the fault suite are proven
 * where their feature is tested, and not repeated here:
 * - during an export: test/workers/exports.test.ts ('two worker processes, one killed with SIGKILL mid-export')
 * - during a batch: test/workers/batch-write.test.ts ('SIGKILL mid-batch and restart')
 * - during refreshes: test/workers/fleet-scale.test.ts ('a SIGKILLed worker loses no job')
 * - one of two API processes: test/faults/outages.test.ts
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { auth, build, configEnv, testConfig, uniquePrefix } from '../helpers/app.ts'
import { type ChildHandle, startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import type { Tap } from '../helpers/tap.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'people', { id: 'S' })
await putItems(
  dynamo,
  'people',
  Array.from({ length: 50 }, (_, i) => ({ id: { S: `p${i}` }, n: { N: String(i) } })),
)
const exportDir = mkdtempSync(join(tmpdir(), 'dc-kills-'))
t.teardown(() => rmSync(exportDir, { recursive: true, force: true }))
const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())

type Mode =
  /** Forward to SES and answer. */
  | 'pass'
  /** Forward to SES (it stores the message), then never answer: the sender dies not knowing it was sent. */
  | 'accept-then-hold'
  /** Hold the request before SES sees it; dropped when the sender goes away. */
  | 'hold-before-ses'
  /** Answer 500 without forwarding, `refusals` times, then pass. */
  | 'refuse'

/**
 * A small HTTP proxy in front of the SES stand-in, so a test can kill the sender at a chosen point of
 * a send. `reached()` resolves at that point.
 */
async function startSesInterposer(target: string) {
  let mode: Mode = 'pass'
  let reachedPoint: () => void = () => {}
  let reached = new Promise<void>((r) => (reachedPoint = r))
  const counts = { requests: 0, forwarded: 0, dropped: 0, refused: 0 }
  let refusals = 0
  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse | undefined) =>
    new Promise<void>((resolve) => {
      counts.forwarded++
      const url = new URL(req.url ?? '/', target)
      const out = httpRequest(url, { method: req.method, headers: req.headers }, (answer) => {
        const chunks: Buffer[] = []
        answer.on('data', (c: Buffer) => chunks.push(c))
        answer.on('end', () => {
          if (res) {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            res.end(Buffer.concat(chunks))
          }
          resolve()
        })
      })
      out.on('error', () => resolve())
      out.end(body)
    })
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      const isSend = req.method === 'POST' && /SendEmail|SendRawEmail/.test(body.toString())
      if (!isSend || mode === 'pass') {
        if (isSend) counts.requests++
        await forward(req, body, res)
        return
      }
      counts.requests++
      if (mode === 'refuse') {
        counts.refused++
        if (--refusals <= 0) mode = 'pass'
        res.writeHead(500, { 'content-type': 'text/xml' })
        res.end('<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected</Message></Error></ErrorResponse>')
        return
      }
      if (mode === 'accept-then-hold') {
        await forward(req, body, undefined)
        reachedPoint()
        return // the answer is never sent
      }
      // hold-before-ses: SES only gets it if the sender is still there to wait for the answer.
      reachedPoint()
      res.on('close', () => {
        if (!res.writableEnded) counts.dropped++
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    setMode(next: Mode, times = 0) {
      mode = next
      refusals = times
      reached = new Promise<void>((r) => (reachedPoint = r))
    },
    reached: () => reached,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const ses = await startSesInterposer(services.sesEndpoint)
t.teardown(() => ses.close())

async function mailsTo(to: string): Promise<number> {
  const store = (await (await fetch(`${services.sesEndpoint}/store`)).json()) as { emails: Array<{ destination: { to: string[] } }> }
  return store.emails.filter((m) => m.destination.to.includes(to)).length
}

const prefix = uniquePrefix()
const overrides = { REDIS_PREFIX: prefix, EXPORT_DIR: exportDir, PUBLIC_URL: 'http://dynacache.test', JOB_STALL_MS: '1500' }
const api = await build(t, services, overrides)
const workerEnv = configEnv(testConfig({ ...services, sesEndpoint: ses.endpoint }, { ...overrides, LOG_LEVEL: 'info' }))
const emails = new Queue('email', { connection: redis, prefix: api.keys.queuePrefix })
t.teardown(() => emails.close())

async function startWorker(t: Tap): Promise<ChildHandle> {
  const worker = startEntry(t, 'src/workers/main.ts', workerEnv)
  await waitForLog(worker, /worker\.started/)
  return worker
}

/** Creates an export that mails `to` when it completes; returns its id. */
async function exportNotifying(to: string): Promise<string> {
  const res = await api.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: { table: 'people', format: 'jsonl', notify: to } })
  if (res.statusCode !== 202) throw new Error(`POST /exports: ${res.statusCode} ${res.body}`)
  return res.json().id
}

/** Kills the worker at the point the interposer reports, lets a fresh worker finish, returns what happened. */
async function killDuringSend(t: Tap, mode: Mode, victim: ChildHandle) {
  const to = `kill-${mode}-${Date.now()}@example.com`
  ses.setMode(mode)
  const sendsBefore = ses.counts.requests
  const id = await exportNotifying(to)
  await ses.reached()
  victim.signal('SIGKILL')
  const exit = await victim.exited
  const mailsAtKill = await mailsTo(to)
  ses.setMode('pass')
  const survivor = await startWorker(t)
  const finished = await waitFor('the email job to finish', async () => {
    const state = await (await emails.getJob(`${id}-export-completed`))?.getState()
    return (state === 'completed' || state === 'failed') && state
  })
  // Read again once finished: a job object fetched just before it finished holds no return value.
  const job = { job: (await emails.getJob(`${id}-export-completed`))!, state: finished }
  await sleep(500) // anything sent late would show up by now
  const mails = await mailsTo(to)
  const sent = (victim.output() + survivor.output()).match(/"msg":"email\.sent"/g)?.length ?? 0
  return { id, exit, mailsAtKill, mails, sent, sends: ses.counts.requests - sendsBefore, job: job.job, state: job.state, survivor }
}

t.test('SIGKILL after SES accepted the email, before the worker recorded it: the retried job does not mail again', async (t) => {
  const victim = await startWorker(t)
  const r = await killDuringSend(t, 'accept-then-hold', victim)
  t.comment(
    `export ${r.id}: worker exit ${r.exit}; SendEmail requests ${r.sends}, emails stored at the kill ${r.mailsAtKill}, after the retry ${r.mails}; email job ${r.state}, stalled ${r.job.stalledCounter ?? 0}x, returned ${JSON.stringify(r.job.returnvalue)}`,
  )
  t.equal(r.exit, 'SIGKILL', 'the worker was killed (SIGKILL) mid-send')
  t.equal(r.mailsAtKill, 1, 'SES had stored the email when the worker died')
  t.equal(r.state, 'completed', 'the email job completed (once)')
  t.equal(r.mails, 1, 'exactly one email: no duplicate')
  t.equal(r.sends, 1, 'SES was asked once')
  t.match(r.survivor.output(), /"msg":"email\.outcome-unknown"/, 'the re-run logged the interrupted send for an operator')
  await r.survivor.stop()
})

t.test('SIGKILL before SES received the email: at most one email, the job still completes', async (t) => {
  const victim = await startWorker(t)
  const r = await killDuringSend(t, 'hold-before-ses', victim)
  t.comment(
    `export ${r.id}: worker exit ${r.exit}; SendEmail requests ${r.sends} (dropped unsent ${ses.counts.dropped}), emails stored ${r.mails}; email job ${r.state}, returned ${JSON.stringify(r.job.returnvalue)}`,
  )
  t.equal(r.exit, 'SIGKILL', 'the worker was killed (SIGKILL) mid-send')
  t.equal(r.state, 'completed', 'the email job completed (once)')
  t.ok(r.mails <= 1, 'no duplicate email')
  // SES cannot be asked whether it got a message, so a send cut short is never repeated: here it was
  // lost, which the worker says in its log (the cost of never mailing twice).
  t.equal(r.mails, 0, 'the interrupted send is not repeated')
  t.match(r.survivor.output(), /"msg":"email\.outcome-unknown"/, 'logged as outcome unknown')
  await r.survivor.stop()
})

t.test('SES refusing every attempt of one send (no kill): the claim is released, the job retries and mails once', async (t) => {
  const worker = await startWorker(t)
  const to = `refused-${Date.now()}@example.com`
  // The SDK tries once per send (ses-client.ts): 2 refusals fail the job's first two attempts, the third goes through.
  ses.setMode('refuse', 2)
  const sendsBefore = ses.counts.requests
  const id = await exportNotifying(to)
  await waitFor('the email job to complete', async () => (await (await emails.getJob(`${id}-export-completed`))?.getState()) === 'completed')
  // Read again once completed: a job object fetched just before it completed holds no return value.
  const job = (await emails.getJob(`${id}-export-completed`))!
  const mails = await mailsTo(to)
  t.comment(
    `export ${id}: SendEmail requests ${ses.counts.requests - sendsBefore} (refused ${ses.counts.refused}), job attempts ${job.attemptsMade}, emails stored ${mails}`,
  )
  t.ok(job.attemptsMade >= 2, 'the first attempt failed and the job was retried')
  t.equal(mails, 1, 'exactly one email')
  t.match(job.returnvalue, { sent: true })
  await worker.stop()
})
