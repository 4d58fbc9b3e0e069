import { type EntryHeaders, JSON_TYPE } from './cached-reply.ts'
import type { BudgetAnswer } from './key-budget.ts'

/** What the headers of an answer need of its entry. */
interface Answered {
  etag: string
}

/** One kind of answer's header list, and what it was built from. */
interface Template {
  entry: EntryHeaders
  etag: string
  /** The body's length; -1 for a 304. */
  length: number
  limit: number
  resetS: number
  list: string[]
  /** Where the list holds the values patched per answer. */
  remainingAt: number
  resetAt: number
}

/**
 * The header lists of one learned route's answers in the hit lane, as [name, value, ...] for writeHead:
 * the route's fixed headers (security, CORS), the rate limit's, the entry's (ETag, X-Cache,
 * Cache-Status, Cache-Control, Age) and the body's. One list per kind of answer (gzip, plain, 304),
 * rebuilt only when what it was built from changes (another entry, or another whole second of the
 * entry's age: `hitHeaders` answers a new object then), and patched in place with each answer's
 * rate-limit values. writeHead reads the list before it returns and keeps nothing of it, so one list
 * serves every answer; building ~30 strings per hit cost more than the rest of the lane's own work.
 */
export function createLaneHeaders(fixed: readonly string[]) {
  // [304, gzip, plain]
  const templates: Array<Template | undefined> = [undefined, undefined, undefined]

  function build(rate: BudgetAnswer, hit: Answered, entry: EntryHeaders, body: Buffer | undefined, gzip: boolean): Template {
    const list = [
      ...fixed,
      'ratelimit-limit',
      String(rate.limit),
      'ratelimit-remaining',
      String(rate.remaining),
      'ratelimit-reset',
      String(rate.resetS),
      'vary',
      'Accept-Encoding',
      'etag',
      hit.etag,
      'x-cache',
      'HIT',
      'cache-status',
      entry.cacheStatus,
      'cache-control',
      entry.cacheControl,
      'age',
      entry.age,
    ]
    if (body !== undefined) {
      list.push('content-type', JSON_TYPE)
      if (gzip) list.push('content-encoding', 'gzip')
      list.push('content-length', String(body.length))
    }
    const at = (name: string) => list.indexOf(name, fixed.length) + 1
    return {
      entry,
      etag: hit.etag,
      length: body?.length ?? -1,
      limit: rate.limit,
      resetS: rate.resetS,
      list,
      remainingAt: at('ratelimit-remaining'),
      resetAt: at('ratelimit-reset'),
    }
  }

  /** The headers of one answer (`body` undefined: a 304). Valid until the next call. */
  return function headersFor(rate: BudgetAnswer, hit: Answered, entry: EntryHeaders, body: Buffer | undefined, gzip: boolean): string[] {
    const kind = body === undefined ? 0 : gzip ? 1 : 2
    let template = templates[kind]
    if (
      template === undefined ||
      template.entry !== entry ||
      template.etag !== hit.etag ||
      template.length !== (body?.length ?? -1) ||
      template.limit !== rate.limit
    ) {
      template = build(rate, hit, entry, body, gzip)
      templates[kind] = template
      return template.list
    }
    template.list[template.remainingAt] = String(rate.remaining)
    if (template.resetS !== rate.resetS) {
      template.resetS = rate.resetS
      template.list[template.resetAt] = String(rate.resetS)
    }
    return template.list
  }
}

export type LaneHeaders = ReturnType<typeof createLaneHeaders>
