import { PassThrough, Readable, Transform } from 'node:stream'
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { safeName } from './local.ts'
import { type ExportStorage, PartLostError, type PartRef } from './types.ts'

const isMissing = (err: unknown) =>
  (err as { name?: string }).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404

/**
 * Exports in an S3 bucket under `<prefix>/<id>/`. Objects cannot be appended to, so a part is one
 * object per page (`parts/<segment>/<page>`): a resumed segment rewrites the page after its
 * checkpoint under the same name, and only pages below the checkpoint are ever read, so an
 * interrupted run's extra pages never count. Finished files go up as multipart uploads
 * (@aws-sdk/lib-storage), which S3 shows only once complete.
 */
export function createS3Storage({ client, bucket, prefix }: { client: S3Client; bucket: string; prefix: string }): ExportStorage {
  const base = (id: string) => `${safeName(prefix)}/${safeName(id)}/`
  const pageKey = ({ exportId, segment }: PartRef, page: number) => `${base(exportId)}parts/${segment}/${String(page).padStart(9, '0')}`

  async function deletePrefix(keyPrefix: string) {
    let token: string | undefined
    do {
      const page: ListObjectsV2CommandOutput = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix, ContinuationToken: token }))
      const objects = (page.Contents ?? []).map((o) => ({ Key: o.Key! }))
      if (objects.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }))
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  }

  return {
    kind: 's3',

    async writePart(ref, at, data) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: pageKey(ref, at.pages), Body: data, ContentLength: data.length }))
    },

    readPart(ref, upTo) {
      async function* read() {
        let read = 0
        for (let page = 0; page < upTo.pages; page++) {
          let body: AsyncIterable<Uint8Array>
          try {
            body = (await client.send(new GetObjectCommand({ Bucket: bucket, Key: pageKey(ref, page) }))).Body as unknown as Readable
          } catch (err) {
            if (isMissing(err)) throw new PartLostError(`page ${page} of part ${ref.segment} of ${ref.exportId} is missing`)
            throw err
          }
          for await (const chunk of body) {
            read += chunk.length
            yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          }
        }
        if (read !== upTo.bytes) throw new PartLostError(`part ${ref.segment} of ${ref.exportId} holds ${read} of ${upTo.bytes} committed bytes`)
      }
      return Readable.from(read(), { objectMode: false })
    },

    async putFile(exportId, name, body) {
      let bytes = 0
      const counted = new PassThrough()
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length
          done(null, chunk)
        },
      })
      body.on('error', (err) => counted.destroy(err))
      body.pipe(counter).pipe(counted)
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: `${base(exportId)}${safeName(name)}`, Body: counted },
        queueSize: 2,
        partSize: 8 * 1024 * 1024,
        leavePartsOnError: false,
      })
      await upload.done()
      return bytes
    },

    async openFile(exportId, name) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${base(exportId)}${safeName(name)}` }))
        return { stream: out.Body as unknown as Readable, bytes: out.ContentLength ?? 0 }
      } catch (err) {
        if (isMissing(err)) return undefined
        throw err
      }
    },

    removeParts: (exportId) => deletePrefix(`${base(exportId)}parts/`),
    remove: (exportId) => deletePrefix(base(exportId)),

    async list() {
      const ids: string[] = []
      let token: string | undefined
      do {
        const page: ListObjectsV2CommandOutput = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: `${safeName(prefix)}/`, Delimiter: '/', ContinuationToken: token }),
        )
        for (const p of page.CommonPrefixes ?? []) ids.push(p.Prefix!.slice(prefix.length + 1, -1))
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      return ids
    },

    close: () => client.destroy(),
  }
}
