import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { S3Client } from '@aws-sdk/client-s3'
import t from 'tap'
import { createLocalStorage, createS3Storage, type ExportStorage, PartLostError } from '../../../src/shared/exports/storage/index.ts'
import { startS3 } from '../../helpers/s3.ts'

type Factory = (prefix: string) => ExportStorage

const dir = await mkdtemp(join(tmpdir(), 'dc-storage-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const s3 = await startS3(t)

const implementations: Record<string, Factory> = {
  local: (prefix) => createLocalStorage(dir, prefix),
  s3: (prefix) => {
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true })
    return createS3Storage({ client, bucket: s3.bucket, prefix })
  },
}

const page = (s: string) => Buffer.from(s)
const read = (storage: ExportStorage, exportId: string, segment: number, pages: number, bytes: number) =>
  buffer(storage.readPart({ exportId, segment }, { pages, bytes })).then((b) => b.toString())

/** The contract every ExportStorage keeps; run against each implementation. */
for (const [kind, create] of Object.entries(implementations)) {
  t.test(`${kind}: the storage contract`, async (t) => {
    const storage = create(`p${kind}`)
    t.teardown(() => storage.close())
    t.equal(storage.kind, kind)

    t.test('pages written in turn read back as one part; an empty part reads as nothing', async (t) => {
      const ref = { exportId: 'e1', segment: 0 }
      await storage.writePart(ref, { pages: 0, bytes: 0 }, page('a1\na2\n'))
      await storage.writePart(ref, { pages: 1, bytes: 6 }, page('b1\n'))
      await storage.writePart(ref, { pages: 2, bytes: 9 }, page(''))
      t.equal(await read(storage, 'e1', 0, 3, 9), 'a1\na2\nb1\n')
      t.equal(await read(storage, 'e1', 0, 2, 9), 'a1\na2\nb1\n', 'reading up to a checkpoint')
      t.equal(await read(storage, 'e1', 7, 0, 0), '', 'a part with no committed page is empty')
    })

    t.test('a resumed segment rewrites from its checkpoint: what an interrupted run wrote after it never counts', async (t) => {
      const ref = { exportId: 'e2', segment: 1 }
      await storage.writePart(ref, { pages: 0, bytes: 0 }, page('p0\n'))
      await storage.writePart(ref, { pages: 1, bytes: 3 }, page('p1-uncommitted-long\n'))
      await storage.writePart(ref, { pages: 2, bytes: 23 }, page('p2-uncommitted\n'))
      // The checkpoint says one page (3 bytes): the run that resumes writes page 1 again.
      await storage.writePart(ref, { pages: 1, bytes: 3 }, page('p1\n'))
      t.equal(await read(storage, 'e2', 1, 2, 6), 'p0\np1\n')
      await storage.writePart(ref, { pages: 2, bytes: 6 }, page('p2\n'))
      t.equal(await read(storage, 'e2', 1, 3, 9), 'p0\np1\np2\n')
    })

    t.test('a part holding less than its checkpoint is reported lost', async (t) => {
      const ref = { exportId: 'e3', segment: 0 }
      await storage.writePart(ref, { pages: 0, bytes: 0 }, page('only\n'))
      await t.rejects(read(storage, 'e3', 0, 2, 10), PartLostError)
      await t.rejects(read(storage, 'e3', 2, 1, 4), PartLostError, 'a part that was never written')
    })

    t.test('files: stored whole from a stream, opened with their size, replaced, absent ones undefined', async (t) => {
      const big = Buffer.alloc(12 * 1024 * 1024 + 5, 'x')
      const bytes = await storage.putFile('e4', 'export.jsonl', Readable.from([big.subarray(0, 1000), big.subarray(1000)]))
      t.equal(bytes, big.length, 'a multipart upload on S3')
      const opened = (await storage.openFile('e4', 'export.jsonl'))!
      t.equal(opened.bytes, big.length)
      t.ok((await buffer(opened.stream)).equals(big))
      await storage.putFile('e4', 'export.jsonl', Readable.from([page('small')]))
      t.equal((await buffer((await storage.openFile('e4', 'export.jsonl'))!.stream)).toString(), 'small', 'replaced')
      t.equal(await storage.openFile('e4', 'export.csv'), undefined)
      t.equal(await storage.openFile('nope', 'export.csv'), undefined)
      await t.rejects(storage.putFile('e4', '../escape', Readable.from([page('x')])), /unsafe/, 'names cannot leave the export')
    })

    t.test('a failing source stores nothing', async (t) => {
      async function* failing() {
        yield page('half')
        throw new Error('source broke')
      }
      await t.rejects(storage.putFile('e5', 'export.csv', Readable.from(failing())), /source broke/)
      t.equal(await storage.openFile('e5', 'export.csv'), undefined)
    })

    t.test('removeParts keeps the file; remove takes everything; list knows what is stored', async (t) => {
      const ref = { exportId: 'e6', segment: 0 }
      await storage.writePart(ref, { pages: 0, bytes: 0 }, page('x\n'))
      await storage.putFile('e6', 'export.csv', Readable.from([page('file')]))
      t.ok((await storage.list()).includes('e6'))
      await storage.removeParts('e6')
      await t.rejects(read(storage, 'e6', 0, 1, 2), PartLostError, 'parts gone')
      t.ok(await storage.openFile('e6', 'export.csv'), 'file kept')
      await storage.remove('e6')
      t.equal(await storage.openFile('e6', 'export.csv'), undefined)
      t.notOk((await storage.list()).includes('e6'))
      await storage.remove('never-existed')
    })

    t.test('deployments with another prefix never see each other', async (t) => {
      const other = create(`q${kind}`)
      t.teardown(() => other.close())
      t.same(await other.list(), [])
      await other.putFile('e1', 'export.csv', Readable.from([page('other')]))
      t.same(await other.list(), ['e1'])
      t.equal(await read(storage, 'e1', 0, 2, 9), 'a1\na2\nb1\n', 'the first prefix is untouched')
    })
  })
}
