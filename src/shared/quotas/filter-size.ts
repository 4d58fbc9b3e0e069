import { errors } from '../errors.ts'

/** How many characters of a filter the export list shows; GET /exports/:id has it whole. */
export const FILTER_SUMMARY_CHARS = 200

/** Bytes of a filter as given: JSON text as is, a parsed array as its JSON. */
export function filterBytes(filter: unknown): number {
  if (filter === undefined || filter === null) return 0
  return Buffer.byteLength(typeof filter === 'string' ? filter : JSON.stringify(filter))
}

/** Throws DC_ERR_FILTER_TOO_LARGE (400) for a filter over `maxBytes` (FILTER_MAX_BYTES). */
export function assertFilterSize(filter: unknown, maxBytes: number): void {
  const bytes = filterBytes(filter)
  if (bytes > maxBytes) throw new errors.DC_ERR_FILTER_TOO_LARGE(bytes, maxBytes)
}

/** A long filter cut to its first characters and its size, so a page of exports stays small. */
export function summarizeFilter(filter: string | null): string | null {
  if (filter === null || filter.length <= FILTER_SUMMARY_CHARS) return filter
  return `${filter.slice(0, FILTER_SUMMARY_CHARS)}… (${Buffer.byteLength(filter)} bytes)`
}
