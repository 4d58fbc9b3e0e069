import { randomBytes } from 'node:crypto'
import { constants, createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type ExportStorage, PartLostError, type PartPosition, type PartRef } from './types.ts'

const SAFE_NAME = /^[A-Za-z0-9_.-]{1,128}$/

/** Refuses a name that could leave the export's directory (ids are generated, but never trust a path). */
export function safeName(name: string): string {
  if (!SAFE_NAME.test(name) || name.startsWith('.')) throw new Error(`unsafe export storage name: ${JSON.stringify(name)}`)
  return name
}

const isMissing = (err: unknown) => (err as { code?: string }).code === 'ENOENT'

/**
 * Exports in a directory (EXPORT_DIR/<prefix>/<id>/): one file per part, written in place at the
 * checkpointed offset (truncating an interrupted run's tail) and synced before the checkpoint is saved;
 * finished files are written under a temporary name and renamed, so a download never sees half a file.
 * Every worker must see the same directory (one host, or a shared volume).
 */
export function createLocalStorage(dir: string, prefix: string): ExportStorage {
  const root = resolve(dir, safeName(prefix))
  const exportDir = (id: string) => join(root, safeName(id))
  const partPath = ({ exportId, segment }: PartRef) => join(exportDir(exportId), 'parts', `${segment}.part`)

  const committed = (path: string, upTo: PartPosition): Iterable<Buffer> | AsyncIterable<Buffer> =>
    upTo.bytes === 0 ? [] : createReadStream(path, { start: 0, end: upTo.bytes - 1 })

  return {
    kind: 'local',

    async writePart(ref, at, data) {
      const path = partPath(ref)
      await mkdir(join(exportDir(ref.exportId), 'parts'), { recursive: true })
      const file = await open(path, constants.O_RDWR | constants.O_CREAT)
      try {
        const { size } = await file.stat()
        if (size < at.bytes) throw new PartLostError(`part ${ref.segment} of ${ref.exportId} holds ${size} of ${at.bytes} committed bytes`)
        if (size > at.bytes) await file.truncate(at.bytes)
        let written = 0
        while (written < data.length) {
          const { bytesWritten } = await file.write(data, written, data.length - written, at.bytes + written)
          written += bytesWritten
        }
        // On disk before the checkpoint that counts these bytes is saved.
        await file.datasync()
      } finally {
        await file.close()
      }
    },

    readPart(ref, upTo) {
      const path = partPath(ref)
      async function* read() {
        let read = 0
        try {
          for await (const chunk of committed(path, upTo)) {
            read += (chunk as Buffer).length
            yield chunk as Buffer
          }
        } catch (err) {
          if (isMissing(err)) throw new PartLostError(`part ${ref.segment} of ${ref.exportId} is missing`)
          throw err
        }
        if (read !== upTo.bytes) throw new PartLostError(`part ${ref.segment} of ${ref.exportId} holds ${read} of ${upTo.bytes} committed bytes`)
      }
      return Readable.from(read(), { objectMode: false })
    },

    async putFile(exportId, name, body) {
      const target = join(exportDir(exportId), safeName(name))
      const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`
      await mkdir(exportDir(exportId), { recursive: true })
      try {
        await pipeline(body, createWriteStream(temporary))
        const file = await open(temporary, 'r')
        await file.datasync().finally(() => file.close())
        await rename(temporary, target)
      } catch (err) {
        await rm(temporary, { force: true })
        throw err
      }
      return (await stat(target)).size
    },

    async openFile(exportId, name) {
      const path = join(exportDir(exportId), safeName(name))
      try {
        const { size } = await stat(path)
        return { stream: createReadStream(path), bytes: size }
      } catch (err) {
        if (isMissing(err)) return undefined
        throw err
      }
    },

    async removeParts(exportId) {
      await rm(join(exportDir(exportId), 'parts'), { recursive: true, force: true })
    },

    async remove(exportId) {
      await rm(exportDir(exportId), { recursive: true, force: true })
    },

    async list() {
      try {
        return (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name)
      } catch (err) {
        if (isMissing(err)) return []
        throw err
      }
    },

    close() {},
  }
}
