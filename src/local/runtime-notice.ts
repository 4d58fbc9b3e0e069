/**
 * The AWS SDK warns, in every process and over nine lines, that its releases after the first week of
 * January 2027 need Node >= 22. The local stack turns that off in its processes (the SDK's own switch)
 * and says it once, in one line, with what to do about it.
 */
export const SDK_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'

/** The Node major the AWS SDK requires from January 2027 on. */
export const SDK_NODE_FLOOR = 22

/** One line for an older Node, undefined on a supported one. */
export function runtimeNotice(version: string = process.version): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1])
  if (!Number.isFinite(major) || major >= SDK_NODE_FLOOR) return undefined
  return `Node ${version} is fine for development; AWS SDK releases after early January 2027 need Node >= ${SDK_NODE_FLOOR} (the Docker image runs Node 24)`
}
