// A lone surrogate cannot be encoded as UTF-8; the SDK would silently replace it with U+FFFD.
const LONE_SURROGATE = /\p{Cs}/u

/** Whether `text` holds a lone surrogate, so it is not valid Unicode and DynamoDB cannot store it as is. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text)
}

/** `text` as a JSON string for an error message, cut to 45 characters and '...' when longer than 48. */
export function quoteForMessage(text: string): string {
  return JSON.stringify(text.length > 48 ? `${text.slice(0, 45)}...` : text)
}
