/**
 * The "bare" side of scenarios 6 and 7, run as its own process (like the worker it is compared with,
 * and away from the counting proxy that lives in the bench process):
 *
 *   node --import=tsx bench/lib/bare-client.ts '<BareTask as JSON>'
 *
 * - scan: a parallel Scan (Segment / TotalSegments, the export's page size), every segment page by
 *   page at once, each page's items as JSONL lines (the same document JSON the export writes) appended
 *   to one file through one write stream. No queue, no checkpoints, no parts, no progress.
 * - batch-write: the plain BatchWriteItem loop of lib/bulk.ts, `lanes` calls in flight, unprocessed
 *   requests sent again at once.
 *
 * Each task first runs a small untimed warm-up (so the JIT is as warm as the worker's), then the timed
 * run, and prints one line: BARE_RESULT_MARK followed by a BareResult as JSON (see bare.ts).
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb'
import { createDynamoClients } from '../../src/shared/dynamo/client.ts'
import { itemToDocumentJson } from '../../src/shared/dynamo/item-json.ts'
import { BARE_RESULT_MARK, type BareResult, type BareTask } from './bare.ts'
import { writeItems } from './bulk.ts'
import { peakRssBytes } from './proc.ts'
import { benchItem } from './seed.ts'

async function scanToJsonl(send: (input: ScanCommand) => Promise<ScanCommandOutput>, task: Extract<BareTask, { mode: 'scan' }>, table: string, out: string) {
  const stream = createWriteStream(out)
  let items = 0
  let bytes = 0
  await Promise.all(
    Array.from({ length: task.segments }, async (_, segment) => {
      let key: ScanCommandOutput['LastEvaluatedKey']
      do {
        const page = await send(
          new ScanCommand({
            TableName: table,
            Segment: segment,
            TotalSegments: task.segments,
            ...(task.limit > 0 ? { Limit: task.limit } : {}),
            ...(key ? { ExclusiveStartKey: key } : {}),
          }),
        )
        let text = ''
        for (const item of page.Items ?? []) text += `${itemToDocumentJson(item)}\n`
        items += page.Items?.length ?? 0
        bytes += Buffer.byteLength(text)
        if (!stream.write(text)) await once(stream, 'drain')
        key = page.LastEvaluatedKey
      } while (key)
    }),
  )
  stream.end()
  await finished(stream)
  return { items, bytes }
}

async function run(task: BareTask): Promise<BareResult> {
  const timeoutMs = task.mode === 'batch-write' ? task.timeoutMs : 10_000
  const clients = createDynamoClients({ DYNAMODB_ENDPOINT: task.endpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: timeoutMs })
  try {
    if (task.mode === 'scan') {
      const send = (command: ScanCommand) => clients.raw.send(command)
      await scanToJsonl(send, task, task.warmupTable, `${task.out}.warmup`)
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      const { items, bytes } = await scanToJsonl(send, task, task.table, task.out)
      const ms = performance.now() - t0
      const cpu = process.cpuUsage(cpu0)
      return { ms, items, bytes, cpuUs: cpu.user + cpu.system, peakRssBytes: peakRssBytes(process.pid) }
    }
    const items = Array.from({ length: task.count }, (_, i) => benchItem(task.first + i))
    if (task.warmupPuts > 0) await writeItems(clients.raw, task.table, Math.min(task.warmupPuts, task.count), (i) => items[i]!, task.lanes)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const { calls, unprocessed } = await writeItems(clients.raw, task.table, task.count, (i) => items[i]!, task.lanes)
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    return { ms, items: task.count, calls, unprocessed, cpuUs: cpu.user + cpu.system, peakRssBytes: peakRssBytes(process.pid) }
  } finally {
    clients.close()
  }
}

// The IPC channel closes when the bench process dies, whatever the signal: do not outlive it.
process.on('disconnect', () => process.exit(1))
try {
  const result = await run(JSON.parse(process.argv[2] ?? '') as BareTask)
  process.stdout.write(`${BARE_RESULT_MARK}${JSON.stringify(result)}\n`)
  process.exit(0)
} catch (err) {
  process.stderr.write(`bare client failed: ${(err as Error).stack ?? err}\n`)
  process.exit(1)
}
