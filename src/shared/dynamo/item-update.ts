import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { inspectItem } from '../batches/item-rules.ts'
import { codeOf } from '../error-classes.ts'
import { errors } from '../errors.ts'
import { DocumentProblem, documentSet, documentValue } from './document-values.ts'
import { typedJsonToAttributeValues } from './item-json.ts'
import { indexKeyProblem, keyAttributes, typeOf, type WriteFormat } from './item-put.ts'
import { type FieldPath, type PathStep, parseFields } from './projection.ts'
import type { TableDescription } from './table-description.ts'
import type { Expression } from './write-conditions.ts'

/** The most paths one PATCH may name across set, remove, add and delete. */
export const MAX_UPDATE_PATHS = 100

const invalidUpdate = (message: string) => new errors.DC_ERR_INVALID_UPDATE(message)

/** A PATCH body: paths to set (to a value), remove, add to (a number or a set) and delete from (a set). */
export interface UpdateBody {
  set?: Record<string, unknown>
  remove?: string[]
  add?: Record<string, unknown>
  delete?: Record<string, unknown>
}

interface UpdatePath {
  clause: 'set' | 'remove' | 'add' | 'delete'
  path: FieldPath
  value?: AttributeValue
}

function parsePath(raw: string, clause: string): FieldPath {
  let paths: FieldPath[]
  try {
    paths = parseFields(raw)
  } catch (err) {
    throw invalidUpdate(`${clause} path ${JSON.stringify(raw)}: ${(err as Error).message.replace(/^fields\[0\] /, '')}`)
  }
  if (paths.length !== 1 || paths[0]!.text !== raw) {
    throw invalidUpdate(
      `${clause} path ${JSON.stringify(raw)} is not one document path: names separated by dots, each optionally followed by [index], no spaces or commas`,
    )
  }
  return paths[0]!
}

const sameStep = (a: PathStep, b: PathStep) => ('name' in a ? 'name' in b && a.name === b.name : 'index' in b && a.index === b.index)

function overlaps(a: FieldPath, b: FieldPath): boolean {
  const n = Math.min(a.steps.length, b.steps.length)
  for (let i = 0; i < n; i++) if (!sameStep(a.steps[i]!, b.steps[i]!)) return false
  return true
}

function typedValue(json: unknown, at: string): AttributeValue {
  try {
    return typedJsonToAttributeValues({ v: json }).v!
  } catch (err) {
    throw new DocumentProblem((err as Error).message.replace('at $.v', `at ${at}`))
  }
}

function clauseValue(clause: UpdatePath['clause'], json: unknown, format: WriteFormat, at: string): AttributeValue {
  try {
    if (format === 'typed') {
      const v = typedValue(json, at)
      const type = typeOf(v)
      if (clause === 'add' && !['N', 'SS', 'NS', 'BS'].includes(type)) throw new DocumentProblem(`${at}: add takes a number or a set`)
      if (clause === 'delete' && !['SS', 'NS', 'BS'].includes(type)) throw new DocumentProblem(`${at}: delete takes a set`)
      return v
    }
    if (clause === 'set') return documentValue(json, at)
    if (clause === 'add' && !Array.isArray(json)) {
      const v = documentValue(json, at)
      if (v.N === undefined) throw new DocumentProblem(`${at}: add takes a number or an array (a set)`)
      return v
    }
    return documentSet(json, at)
  } catch (err) {
    if (err instanceof DocumentProblem || codeOf(err) === 'DC_ERR_VALIDATION') throw invalidUpdate((err as Error).message)
    throw err
  }
}

/** The UpdateExpression of a PATCH and the top-level attribute names it touches. */
export interface BuiltUpdate extends Expression {
  touched: Set<string>
}

/**
 * Validates a PATCH body against the table and builds its UpdateExpression. Refused (400
 * DC_ERR_INVALID_UPDATE, nothing written): nothing to do, more than 100 paths, a path that is not a
 * document path, two paths that overlap (DynamoDB refuses them), a key attribute of the table (keys
 * never change), a path inside an index key (a scalar), an index key given the wrong type, values
 * DynamoDB refuses (bad numbers, empty sets, nesting beyond 32).
 */
export function buildUpdate(description: TableDescription, body: UpdateBody, format: WriteFormat): BuiltUpdate {
  const entries: UpdatePath[] = []
  const push = (clause: UpdatePath['clause'], raw: string, json?: unknown) => {
    const path = parsePath(raw, clause)
    entries.push({ clause, path, ...(clause === 'remove' ? {} : { value: clauseValue(clause, json, format, `${clause}.${raw}`) }) })
  }
  for (const [p, v] of Object.entries(body.set ?? {})) push('set', p, v)
  for (const p of body.remove ?? []) push('remove', p)
  for (const [p, v] of Object.entries(body.add ?? {})) push('add', p, v)
  for (const [p, v] of Object.entries(body.delete ?? {})) push('delete', p, v)
  if (entries.length === 0) throw invalidUpdate('nothing to update: give at least one path in set, remove, add or delete')
  if (entries.length > MAX_UPDATE_PATHS) throw invalidUpdate(`the update names ${entries.length} paths; at most ${MAX_UPDATE_PATHS} are allowed`)

  const { table, index } = keyAttributes(description)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    const head = (e.path.steps[0] as { name: string }).name
    if (table.has(head))
      throw invalidUpdate(
        `${e.clause} ${JSON.stringify(e.path.text)}: '${head}' is a key attribute of the table; keys never change (write the item under its new key and delete the old one)`,
      )
    const indexType = index.get(head)
    if (indexType !== undefined) {
      if (e.path.steps.length > 1)
        throw invalidUpdate(`${e.clause} ${JSON.stringify(e.path.text)}: '${head}' is a key of an index, a scalar with no nested attributes`)
      if (e.clause === 'delete' || (e.clause === 'add' && indexType !== 'N'))
        throw invalidUpdate(`${e.clause} ${JSON.stringify(e.path.text)}: '${head}' is a key of an index of type ${indexType}`)
      const problem =
        e.clause === 'set'
          ? indexKeyProblem(head, indexType, e.value!)
          : e.clause === 'add' && e.value!.N === undefined
            ? `'${head}' is a number key of an index: add a number`
            : undefined
      if (problem) throw invalidUpdate(`${e.clause} ${JSON.stringify(e.path.text)}: ${problem}`)
    }
    if (e.value) {
      const { problem } = inspectItem({ v: e.value })
      if (problem) throw invalidUpdate(`${e.clause} ${JSON.stringify(e.path.text)}: ${problem.replace(/^\$\.v/, 'the value')}`)
    }
    for (let j = 0; j < i; j++) {
      const other = entries[j]!
      if (overlaps(e.path, other.path)) {
        throw invalidUpdate(
          `${other.clause} ${JSON.stringify(other.path.text)} and ${e.clause} ${JSON.stringify(e.path.text)} overlap: DynamoDB changes each part of an item once per update`,
        )
      }
    }
  }

  const names: Record<string, string> = {}
  const values: Record<string, AttributeValue> = {}
  const nameIds = new Map<string, string>()
  const render = (path: FieldPath) =>
    path.steps
      .map((step, i) => {
        if ('index' in step) return `[${step.index}]`
        let id = nameIds.get(step.name)
        if (!id) {
          id = `#u${nameIds.size}`
          nameIds.set(step.name, id)
          names[id] = step.name
        }
        return `${i === 0 ? '' : '.'}${id}`
      })
      .join('')
  let count = 0
  const value = (v: AttributeValue) => {
    const id = `:u${count++}`
    values[id] = v
    return id
  }
  const clauses: string[] = []
  const of = (clause: UpdatePath['clause']) => entries.filter((e) => e.clause === clause)
  const set = of('set').map((e) => `${render(e.path)} = ${value(e.value!)}`)
  if (set.length) clauses.push(`SET ${set.join(', ')}`)
  const remove = of('remove').map((e) => render(e.path))
  if (remove.length) clauses.push(`REMOVE ${remove.join(', ')}`)
  const add = of('add').map((e) => `${render(e.path)} ${value(e.value!)}`)
  if (add.length) clauses.push(`ADD ${add.join(', ')}`)
  const del = of('delete').map((e) => `${render(e.path)} ${value(e.value!)}`)
  if (del.length) clauses.push(`DELETE ${del.join(', ')}`)
  const touched = new Set(entries.map((e) => (e.path.steps[0] as { name: string }).name))
  return { expression: clauses.join(' '), names, values, touched }
}
