import type { Readable } from 'node:stream'

/** One segment's part of an export. */
export interface PartRef {
  exportId: string
  segment: number
}

/** How far a part is committed: its pages (one write each) and their total size. A checkpoint holds both. */
export interface PartPosition {
  pages: number
  bytes: number
}

/**
 * Where export parts and files live. Every implementation passes the same contract test
 * (test/shared/exports/storage.test.ts). Names are scoped by the Redis prefix, so deployments that
 * share a directory or bucket never see each other's exports.
 */
export interface ExportStorage {
  readonly kind: 'local' | 's3'
  /**
   * Writes page `at.pages` of a part: the part becomes its first `at.pages` pages (`at.bytes` bytes)
   * followed by `data`; whatever an interrupted run wrote past that point no longer counts. May throw
   * PartLostError when it can tell the part holds less than `at` (a local file can; S3 pages are
   * checked when read), and the segment then starts over.
   */
  writePart(ref: PartRef, at: PartPosition, data: Buffer): Promise<void>
  /** The committed content of a part, its first `upTo.pages` pages, as one stream; errors with PartLostError if any is missing. */
  readPart(ref: PartRef, upTo: PartPosition): Readable
  /** Stores a finished file from a stream, replacing any earlier one, visible only once complete; resolves with its size. */
  putFile(exportId: string, name: string, body: Readable): Promise<number>
  /** A finished file as a stream with its size, or undefined when there is none. */
  openFile(exportId: string, name: string): Promise<{ stream: Readable; bytes: number } | undefined>
  /** Removes an export's parts, keeping its file. */
  removeParts(exportId: string): Promise<void>
  /** Removes everything stored for an export. */
  remove(exportId: string): Promise<void>
  /** Ids of the exports that have anything stored (the retention job removes those without a record). */
  list(): Promise<string[]>
  close(): void
}

/** A part holds less than its checkpoint says: the segment must start over. */
export class PartLostError extends Error {
  override name = 'PartLostError'
}
