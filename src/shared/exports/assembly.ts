import { createInterface } from 'node:readline'
import { PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { KeyDefinition } from '../dynamo/table-description.ts'
import { cellRows, csvColumns, csvWriter } from './formats.ts'
import { type Checkpoint, type ExportRecord, fieldsOf, fileNameOf } from './model.ts'
import type { ExportStorage } from './storage/index.ts'

export interface AssemblyInput {
  storage: ExportStorage
  record: ExportRecord
  /** Every segment's final checkpoint, in segment order. */
  checkpoints: Checkpoint[]
  /** Key attributes that lead the CSV header: the table's key, then the index's. */
  keys: KeyDefinition[]
  /** Called as the parts are read (0..1, a few times); throwing stops the assembly (a cancel). */
  onProgress(fraction: number): Promise<void>
}

/**
 * Writes an export's file from its parts, in segment order: JSONL parts are joined as they are; CSV
 * cell lines become rows under the header (the union of the names the segments saw), through
 * csv-stringify. Gzip when asked. One streaming pass, so memory does not grow with the export.
 */
export async function assembleExport({ storage, record, checkpoints, keys, onProgress }: AssemblyInput): Promise<{ file: string; bytes: number }> {
  const total = checkpoints.reduce((sum, cp) => sum + cp.bytes, 0)
  const STEPS = 4
  async function* parts(): AsyncGenerator<Buffer> {
    let read = 0
    let step = 0
    for (const [segment, cp] of checkpoints.entries()) {
      for await (const chunk of storage.readPart({ exportId: record.id, segment }, cp)) {
        read += (chunk as Buffer).length
        const reached = total === 0 ? STEPS : Math.floor((STEPS * read) / total)
        if (reached > step) {
          step = reached
          await onProgress(step / STEPS)
        }
        yield chunk as Buffer
      }
    }
  }

  const source = Readable.from(parts(), { objectMode: false })
  const stages: NodeJS.ReadWriteStream[] = []
  let head: Readable = source
  if (record.format === 'csv') {
    // Chosen fields are the header as given; otherwise the keys, then every name seen.
    const columns =
      fieldsOf(record) ??
      csvColumns(
        checkpoints.flatMap((cp) => cp.names ?? []),
        keys,
      )
    head = Readable.from(cellRows(createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY }), columns))
    stages.push(csvWriter(columns))
  }
  if (record.gzip) stages.push(createGzip())
  const tail = new PassThrough()
  const file = fileNameOf(record)
  const [, bytes] = await Promise.all([
    pipeline([head, ...stages, tail] as Array<NodeJS.ReadableStream | NodeJS.WritableStream>),
    storage.putFile(record.id, file, tail).catch((err) => {
      // A store that gave up stops the producing side too, instead of leaving it waiting to write.
      tail.destroy(err)
      throw err
    }),
  ])
  return { file, bytes }
}
