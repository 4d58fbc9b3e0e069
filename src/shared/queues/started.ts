/**
 * A BullMQ producer (Queue, FlowProducer) once it has started. One whose start-up failed (its Redis
 * version check timed out on a loaded machine, or Redis was away) stays failed for good, so it is
 * swapped once for `replace(failed)`, which must hand back the producer to use from now on.
 */
export async function startedProducer<P extends { waitUntilReady(): Promise<unknown> }>(producer: P, replace: (failed: P) => P): Promise<P> {
  try {
    await producer.waitUntilReady()
    return producer
  } catch {
    const next = replace(producer)
    await next.waitUntilReady()
    return next
  }
}
