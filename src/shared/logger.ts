import { type Logger, type LoggerOptions, pino } from 'pino'
import type { Config } from './config.ts'

export type { Logger }

/** The part of a logger that shared code needs, so pino and Fastify's logger both fit. */
export interface LogSink {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** Paths that must never reach a log line: credentials and signed tokens. */
export const REDACT_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'authorization', 'req.query.token', 'token']

export function loggerOptions(config: Pick<Config, 'LOG_LEVEL' | 'NODE_ENV'>, name: string): LoggerOptions {
  return {
    name,
    level: config.LOG_LEVEL,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(config.NODE_ENV === 'development' ? { transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } } } : {}),
  }
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'NODE_ENV'>, name: string): Logger {
  return pino(loggerOptions(config, name))
}
