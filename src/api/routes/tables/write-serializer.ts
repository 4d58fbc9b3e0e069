import { keyString } from '../../../shared/batches/operations.ts'
import type { AttributeMap } from '../../../shared/dynamo/item-json.ts'

/**
 * Runs the writes of one item in this process one after another, each with its cache update: otherwise a
 * write that DynamoDB took first could store its image through after a later one stored its own.
 */
export function createSerializer() {
  const inFlight = new Map<string, Promise<unknown>>()
  return async function oneAtATime<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = inFlight.get(id)
    const run = (previous ? previous.catch(() => {}) : Promise.resolve()).then(fn)
    const settled = run.catch(() => {})
    inFlight.set(id, settled)
    try {
      return await run
    } finally {
      if (inFlight.get(id) === settled) inFlight.delete(id)
    }
  }
}

/** The identity of an item for one-at-a-time writes: table and key, numbers by value. */
export function itemId(description: { name: string }, names: string[], key: AttributeMap) {
  return `${description.name}\u0000${keyString(names, key)}`
}
