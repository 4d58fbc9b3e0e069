export * from './definitions.ts'
export * from './producers.ts'
export * from './started.ts'
