import { setFlagsFromString } from 'node:v8'

/**
 * How far V8 lets the old generation grow past what survived the last full collection, in percent.
 * Left to itself V8 picks up to 300% when collections are cheap, so an export worker whose live data
 * is ~30 MB kept ~130 MB of dead Scan pages before it collected them (peak RSS ~245 MB). At 100% the
 * peak is ~175 MB for the same CPU per item (bench scenario 6); lower values cost CPU.
 */
export const HEAP_GROWING_PERCENT = 100

const FLAG = '--heap-growing-percent'

/**
 * Caps the heap's growth factor for this process unless `node --heap-growing-percent=N` already set
 * one. V8 reads the flag each time it sets the next collection's limit, so it takes effect when set
 * at start-up; NODE_OPTIONS does not accept it, which is why it is set here and not in the scripts.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): number | undefined {
  if (execArgv.some((arg) => arg === FLAG || arg.startsWith(`${FLAG}=`))) return undefined
  setFlagsFromString(`${FLAG}=${HEAP_GROWING_PERCENT}`)
  return HEAP_GROWING_PERCENT
}
