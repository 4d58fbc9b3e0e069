export * from './definitions.ts'
export * from './producers.ts'
