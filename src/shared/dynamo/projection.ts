import { errors } from '../errors.ts'
import { keyOf, type TableDescription } from './table-description.ts'

/** Most paths one `fields` list may name. */
export const MAX_FIELDS = 100
/** Longest single attribute name in a path, in characters. */
export const MAX_FIELD_NAME_LENGTH = 255
// DynamoDB rejects document paths nested deeper than 32 levels.
const MAX_PATH_DEPTH = 32
// A name is anything but the separators of the list and of a path; `[n]` indexes a list element.
const SEGMENT = /^([^.[\],\s]+)((?:\[\d{1,9}\])*)$/

/** One step of a document path: an attribute (map key) name or a list index. */
export type PathStep = { name: string } | { index: number }

/** One validated document path, e.g. `b.c` or `tags[0]`, with its steps. */
export interface FieldPath {
  /** The path as written (normalised: no spaces); the canonical form used in cache identities. */
  text: string
  steps: PathStep[]
}

/** The projection parts of a GetItem / Scan / Query / BatchGetItem input; spread it into the input. */
export interface BuiltProjection {
  ProjectionExpression: string
  ExpressionAttributeNames: Record<string, string>
}

const invalid = (message: string) => new errors.DC_ERR_VALIDATION(message)

function parsePath(raw: string, at: string): FieldPath {
  const text = raw.trim()
  if (text.length === 0) throw invalid(`${at} is empty: fields is a comma-separated list of paths such as a,b.c,tags[0]`)
  const steps: PathStep[] = []
  for (const segment of text.split('.')) {
    const m = SEGMENT.exec(segment)
    if (!m) {
      throw invalid(`${at} ${JSON.stringify(text)} is not a document path: use names separated by dots, each optionally followed by [index]`)
    }
    const name = m[1]!
    if (name.length > MAX_FIELD_NAME_LENGTH) throw invalid(`${at} has a name longer than ${MAX_FIELD_NAME_LENGTH} characters`)
    steps.push({ name })
    for (const index of m[2]!.matchAll(/\[(\d+)\]/g)) steps.push({ index: Number(index[1]) })
  }
  if (steps.length > MAX_PATH_DEPTH) throw invalid(`${at} nests deeper than ${MAX_PATH_DEPTH} levels`)
  return { text, steps }
}

const sameStep = (a: PathStep, b: PathStep) => ('name' in a ? 'name' in b && a.name === b.name : 'index' in b && a.index === b.index)

// True when one path is the other or lies inside it: DynamoDB rejects such a pair ("paths overlap").
function overlaps(a: FieldPath, b: FieldPath): boolean {
  const n = Math.min(a.steps.length, b.steps.length)
  for (let i = 0; i < n; i++) if (!sameStep(a.steps[i]!, b.steps[i]!)) return false
  return true
}

/**
 * Validates a `fields` list (`a,b.c,tags[0]`: at most 100 comma-separated document paths, none inside
 * another) and returns its paths in the order given. Throws DC_ERR_VALIDATION naming the first problem.
 */
export function parseFields(fields: string): FieldPath[] {
  const raw = fields.split(',')
  if (raw.length > MAX_FIELDS) throw invalid(`fields names ${raw.length} paths; at most ${MAX_FIELDS} are allowed`)
  const paths = raw.map((p, i) => parsePath(p, `fields[${i}]`))
  for (let i = 0; i < paths.length; i++) {
    for (let j = 0; j < i; j++) {
      if (overlaps(paths[i]!, paths[j]!)) {
        throw invalid(`fields ${JSON.stringify(paths[j]!.text)} and ${JSON.stringify(paths[i]!.text)} overlap: name each part once`)
      }
    }
  }
  return paths
}

/** The canonical text of a parsed `fields` list: what a cache identity holds. */
export const fieldsParam = (paths: readonly FieldPath[]) => paths.map((p) => p.text).join(',')

/**
 * A ProjectionExpression for `paths` through `#p` name placeholders, with the table's key attributes
 * (and the index's, when reading one) always added, so every projected item can still be addressed.
 * Throws DC_ERR_VALIDATION for a path into a key attribute (keys are scalars) and
 * DC_ERR_INDEX_NOT_FOUND for an unknown index.
 */
export function projectionFor(description: TableDescription, paths: readonly FieldPath[], index?: string): BuiltProjection {
  const keys = [description.key]
  if (index) {
    const indexKey = keyOf(description, index)
    if (!indexKey) throw new errors.DC_ERR_INDEX_NOT_FOUND(index, description.name)
    keys.push(indexKey)
  }
  const keyNames = [...new Set(keys.flatMap((k) => [k.partition.name, ...(k.sort ? [k.sort.name] : [])]))]
  for (const p of paths) {
    const head = p.steps[0] as { name: string }
    if (p.steps.length > 1 && keyNames.includes(head.name)) {
      throw invalid(`fields ${JSON.stringify(p.text)}: key attribute '${head.name}' is a scalar and has no nested attributes`)
    }
  }
  const names: Record<string, string> = {}
  const ids = new Map<string, string>()
  const placeholder = (name: string) => {
    let id = ids.get(name)
    if (id === undefined) {
      id = `#p${ids.size}`
      ids.set(name, id)
      names[id] = name
    }
    return id
  }
  const render = (steps: readonly PathStep[]) => steps.map((s, i) => ('name' in s ? `${i === 0 ? '' : '.'}${placeholder(s.name)}` : `[${s.index}]`)).join('')
  const given = new Set(paths.filter((p) => p.steps.length === 1).map((p) => (p.steps[0] as { name: string }).name))
  const all = [...paths.map((p) => p.steps), ...keyNames.filter((k) => !given.has(k)).map((name) => [{ name }])]
  return { ProjectionExpression: all.map(render).join(', '), ExpressionAttributeNames: names }
}
