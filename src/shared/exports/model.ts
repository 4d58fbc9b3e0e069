import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { DEFAULT_TENANT } from '../access.ts'
import { itemToTypedJson, typedJsonToAttributeValues } from '../dynamo/item-json.ts'

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export const EXPORT_STATUSES = ['queued', 'processing', 'completed', 'failed', 'cancelled'] as const
export type ExportStatus = (typeof EXPORT_STATUSES)[number]

export const TERMINAL_STATUSES: readonly ExportStatus[] = ['completed', 'failed', 'cancelled']
export const isTerminal = (status: ExportStatus) => TERMINAL_STATUSES.includes(status)

/** What POST /exports asked for, validated. */
export interface ExportRequest {
  table: string
  format: ExportFormat
  index?: string
  /** The filter as JSON text (parseFilter / buildScanFilter accept it as is). */
  filter?: string
  gzip: boolean
  notify?: string
  /** A query export: the ExportQuery as JSON text; absent for a Scan export. */
  query?: string
  /** The chosen columns, in order, as a JSON array of document paths; absent for every attribute. */
  fields?: string
}

/** What a query export reads: the key condition of GET /tables/:table/query (index and filter are the record's). */
export interface ExportQuery {
  pk: string
  sk?: string
  skOp?: string
  sk2?: string
  order?: 'asc' | 'desc'
}

/** The chosen columns of an export, or undefined for every attribute. */
export const fieldsOf = (record: Pick<ExportRequest, 'fields'>): string[] | undefined =>
  record.fields === undefined ? undefined : (JSON.parse(record.fields) as string[])

/** One export as the store keeps it. Times are epoch milliseconds. */
export interface ExportRecord extends ExportRequest {
  id: string
  status: ExportStatus
  /** 0-100; only ever rises; 100 exactly when completed. */
  progress: number
  /** Items written to the export so far (after the filter), summed over segments' checkpoints. */
  processedItems: number
  /** Items DynamoDB scanned so far (before the filter). */
  scannedItems: number
  /** DescribeTable's ItemCount when the export started, for progress; 0 when unknown. */
  expectedItems: number
  segments: number
  createdAt: number
  createdBy?: string
  /** The schedule whose run made it, when a schedule did. */
  schedule?: string
  /** The tick of that schedule it ran for. */
  scheduledAt?: number
  /** The tenant that made it; absent on records written before tenants existed (the default tenant). */
  tenant?: string
  startedAt?: number
  /** When it reached a terminal status (completed, failed or cancelled). */
  completedAt?: number
  error?: string
  /** The finished file's name in storage and its size in bytes. */
  file?: string
  bytes?: number
}

/** The tenant an export belongs to. */
export const tenantOf = (record: Pick<ExportRecord, 'tenant'>) => record.tenant ?? DEFAULT_TENANT

/** Events on an export's progress stream (and on its SSE route). */
export const EXPORT_EVENTS = ['progress', 'completed', 'failed', 'cancelled'] as const
export type ExportEventType = (typeof EXPORT_EVENTS)[number]

export interface ExportEventData {
  status: ExportStatus
  progress: number
  processedItems: number
  error?: string
  bytes?: number
}

export interface ExportEvent {
  /** The Redis stream id: the SSE event id a client sends back as Last-Event-ID. */
  id: string
  type: ExportEventType
  data: ExportEventData
}

/** A segment's resume point, saved with every page it commits. */
export interface Checkpoint {
  /** The LastEvaluatedKey to continue from, as typed JSON; null before the first page and when done. */
  key: string | null
  /** Pages committed to the part, and their total size in bytes. */
  pages: number
  bytes: number
  /** Items written (after the filter) and scanned (before it). */
  rows: number
  scanned: number
  done: boolean
  /** CSV only: the attribute names seen in the committed pages, for the header. */
  names?: string[]
  /** How many times a run took this segment over after another stopped mid-way. */
  resumes: number
}

export const FRESH_CHECKPOINT: Checkpoint = Object.freeze({ key: null, pages: 0, bytes: 0, rows: 0, scanned: 0, done: false, resumes: 0 })

export function encodeStartKey(key: Record<string, AttributeValue> | undefined): string | null {
  return key ? itemToTypedJson(key) : null
}

export function decodeStartKey(key: string | null): Record<string, AttributeValue> | undefined {
  return key === null ? undefined : typedJsonToAttributeValues(JSON.parse(key))
}

/** The file name an export is stored under, and the one a download suggests. */
export function fileNameOf(record: Pick<ExportRecord, 'format' | 'gzip'>): string {
  return `export.${record.format}${record.gzip ? '.gz' : ''}`
}

export function downloadNameOf(record: Pick<ExportRecord, 'id' | 'table' | 'format' | 'gzip'>): string {
  return `${record.table}-${record.id.slice(0, 8)}.${record.format}${record.gzip ? '.gz' : ''}`
}

/** The fields of a record as a Redis hash stores them (strings; absent fields left out). */
export function recordToHash(record: ExportRecord): Record<string, string> {
  const hash: Record<string, string> = {}
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined) continue
    hash[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v)
  }
  return hash
}

const NUMBER_FIELDS = [
  'progress',
  'processedItems',
  'scannedItems',
  'expectedItems',
  'segments',
  'createdAt',
  'startedAt',
  'completedAt',
  'bytes',
  'scheduledAt',
] as const

/** A record back from its Redis hash; undefined for an empty hash (no such export). */
export function recordFromHash(hash: Record<string, string>): ExportRecord | undefined {
  if (!hash.id) return undefined
  const record: Record<string, unknown> = { ...hash, gzip: hash.gzip === '1' }
  for (const field of NUMBER_FIELDS) {
    if (hash[field] !== undefined) record[field] = Number(hash[field])
  }
  record.progress ??= 0
  record.processedItems ??= 0
  record.scannedItems ??= 0
  record.expectedItems ??= 0
  // Bookkeeping fields kept in the same hash (email markers) are not part of the record.
  for (const key of Object.keys(record)) if (key.startsWith('mail:')) delete record[key]
  return record as unknown as ExportRecord
}

/** The API paths of an export. */
export function exportPaths(id: string) {
  const self = `/exports/${encodeURIComponent(id)}`
  return { self, events: `${self}/events`, download: `${self}/download` }
}
