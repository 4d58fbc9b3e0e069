/** A bad or missing environment variable; its message is one line and never echoes the value. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Prints a ConfigError as one line and exits 1 (no stack trace); rethrows anything else. */
export function exitOnConfigError(err: unknown): never {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`dynacache: configuration error: ${err.message}\n`)
  process.exit(1)
}
