/** What the helpers need of a tap test (`t`): one type for every helper and test that takes one. */
export interface Tap {
  teardown(fn: () => unknown): void
  /** False once an assertion failed: helpers then print the logs they kept. */
  passing?(): boolean
}
