/**
 * What a client or a stored record may say about a failure. Driver text (`connect ECONNREFUSED
 * 127.0.0.1:1`, `User: arn:aws:iam::123456789012:user/x is not authorized`, a file path) tells an
 * outsider about the network, the AWS account and the disks; callers log the full error and show this.
 */

/** Node's system error codes, as a phrase that names no address, host or path. */
const SYSTEM_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOENT: 'file not found',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOSPC: 'no space left',
  EROFS: 'read-only file system',
}

const SCRUB: Array<[RegExp, string]> = [
  // ARNs (arn:partition:service:region:account:resource), whatever follows them up to a space or quote.
  [/\barn:[a-z0-9-]+:[^\s'"`,;)]*[^\s'"`,;):]/gi, '[arn]'],
  // URLs, with any credentials, host and path.
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"`,;)]+/gi, '[url]'],
  // IPv6 with a port, IPv4 with or without one.
  [/\[[0-9a-f:.]+\](?::\d+)?/gi, '[address]'],
  [/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '[address]'],
  // host:port
  [/\b[a-z0-9-]+(?:\.[a-z0-9-]+)*:\d{2,5}\b/gi, '[address]'],
  // AWS account ids standing alone.
  [/\b\d{12}\b/g, '[account]'],
  // Absolute file paths (quoted or bare).
  [/(^|[\s'"`(=])(?:\/[^\s'"`/]+){2,}\/?/g, '$1[path]'],
  [/\b[a-z]:\\[^\s'"`]+/gi, '[path]'],
]

const MAX_LENGTH = 300

/** `text` with ARNs, account ids, URLs, addresses and paths replaced, cut to a few hundred characters. */
export function safeText(text: string): string {
  let out = text.replace(
    /\b(?:(?:connect|getaddrinfo|read|write|open|spawn) )?(E[A-Z]{3,}(?:_[A-Z]+)?)\b/g,
    (match, code: string) => SYSTEM_CODES[code] ?? match,
  )
  for (const [pattern, replacement] of SCRUB) out = out.replace(pattern, replacement)
  return out.length > MAX_LENGTH ? `${out.slice(0, MAX_LENGTH - 1)}…` : out
}

/**
 * A short, safe reason for a failure: a phrase for Node system errors (`connection refused`), the
 * error's name for AWS SDK errors (`AccessDeniedException`), else its message scrubbed by safeText.
 */
export function safeReason(err: unknown): string {
  if (!(err instanceof Error)) return safeText(String(err))
  const code = (err as NodeJS.ErrnoException).code
  if (typeof code === 'string' && SYSTEM_CODES[code]) return SYSTEM_CODES[code]
  // AWS SDK errors carry $metadata; their name is the service's error code, which names nothing private.
  if ('$metadata' in err && err.name && err.name !== 'Error') return err.name
  const systemCode = /\b(E[A-Z]{3,}(?:_[A-Z]+)?)\b/.exec(err.message)?.[1]
  if (systemCode && SYSTEM_CODES[systemCode]) return SYSTEM_CODES[systemCode]
  return safeText(err.message || err.name || 'unknown error')
}
