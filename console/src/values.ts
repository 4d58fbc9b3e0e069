/**
 * DynamoDB attribute values as the API's typed view sends them ({"N":"..."}, {"SS":[...]}): numbers stay
 * their exact text, so nothing here ever goes through a JavaScript number.
 */
export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] }
  | { L: AttributeValue[] }
  | { M: Record<string, AttributeValue> }

export type Item = Record<string, AttributeValue>

export const typeOf = (v: AttributeValue): string => Object.keys(v)[0] ?? '?'

export const TYPE_NAMES: Record<string, string> = {
  S: 'string',
  N: 'number',
  B: 'binary',
  BOOL: 'boolean',
  NULL: 'null',
  SS: 'string set',
  NS: 'number set',
  BS: 'binary set',
  L: 'list',
  M: 'map',
}

/** Bytes in a base64 string, without decoding it. */
export function base64Bytes(b64: string): number {
  const clean = b64.replace(/=+$/, '')
  return Math.floor((clean.length * 3) / 4)
}

/** A short one-line form for a grid cell; sets and binary are marked, numbers shown with every digit. */
export function shortText(v: AttributeValue, max = 80): string {
  const t = typeOf(v)
  const val = (v as Record<string, unknown>)[t]
  let s: string
  switch (t) {
    case 'S':
    case 'N':
      s = val as string
      break
    case 'B':
      s = `binary ${base64Bytes(val as string)} B`
      break
    case 'BOOL':
      s = String(val)
      break
    case 'NULL':
      s = 'null'
      break
    case 'SS':
    case 'NS':
      s = `{${(val as string[]).join(', ')}}`
      break
    case 'BS':
      s = `{${(val as string[]).map((b) => `binary ${base64Bytes(b)} B`).join(', ')}}`
      break
    case 'L':
      s = `[${(val as AttributeValue[]).length} items]`
      break
    case 'M':
      s = `{${Object.keys(val as object).join(', ')}}`
      break
    default:
      s = JSON.stringify(v)
  }
  // Never cut a number: its digits are the point.
  return t !== 'N' && s.length > max ? `${s.slice(0, max - 1)}…` : s
}

/**
 * The document view (plain JSON) of a typed item, as text: numbers written as their exact digits (never
 * through a double), sets as arrays, binary as base64, the way the API's view=document writes them.
 */
export function documentText(item: Item, indent = 2): string {
  const pad = (n: number) => ' '.repeat(n * indent)
  const write = (v: AttributeValue, depth: number): string => {
    const t = typeOf(v)
    const val = (v as Record<string, unknown>)[t]
    switch (t) {
      case 'N':
        return val as string
      case 'S':
      case 'B':
        return JSON.stringify(val)
      case 'BOOL':
        return String(val)
      case 'NULL':
        return 'null'
      case 'NS':
        return array(
          (val as string[]).map((n) => n),
          depth,
        )
      case 'SS':
      case 'BS':
        return array(
          (val as string[]).map((s) => JSON.stringify(s)),
          depth,
        )
      case 'L':
        return array(
          (val as AttributeValue[]).map((x) => write(x, depth + 1)),
          depth,
        )
      case 'M':
        return object(val as Record<string, AttributeValue>, depth)
      default:
        return JSON.stringify(v)
    }
  }
  const array = (parts: string[], depth: number) => (parts.length === 0 ? '[]' : `[\n${parts.map((p) => pad(depth + 1) + p).join(',\n')}\n${pad(depth)}]`)
  const object = (m: Record<string, AttributeValue>, depth: number) => {
    const keys = Object.keys(m)
    if (keys.length === 0) return '{}'
    return `{\n${keys.map((k) => `${pad(depth + 1)}${JSON.stringify(k)}: ${write(m[k]!, depth + 1)}`).join(',\n')}\n${pad(depth)}}`
  }
  return object(item, 0)
}

export interface KeyAttr {
  name: string
  type: 'S' | 'N' | 'B'
}
export interface KeyDef {
  partition: KeyAttr
  sort?: KeyAttr
}

/** A key value as the item route takes it in the path or `sk`: S as is, N as its digits, B as base64url. */
export function keyParam(v: AttributeValue | undefined): string | undefined {
  if (!v) return undefined
  const t = typeOf(v)
  const val = (v as Record<string, unknown>)[t]
  if (t === 'B') return (val as string).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  return typeof val === 'string' ? val : undefined
}

/** Attribute names over some items: key attributes first, then the rest by how often they appear. */
export function columnsOf(items: Item[], key?: KeyDef): string[] {
  const seen = new Map<string, number>()
  for (const item of items) for (const name of Object.keys(item)) seen.set(name, (seen.get(name) ?? 0) + 1)
  const keys = [key?.partition.name, key?.sort?.name].filter((k): k is string => Boolean(k))
  const rest = [...seen.keys()].filter((k) => !keys.includes(k)).sort((a, b) => seen.get(b)! - seen.get(a)! || a.localeCompare(b))
  return [...keys, ...rest]
}
