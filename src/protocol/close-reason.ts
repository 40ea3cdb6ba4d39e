/** Most UTF-8 bytes a close frame's reason may carry: a control frame's 125 bytes, less the 2 of the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

const encoder = new TextEncoder();

/**
 * `reason` cut to at most {@link MAX_CLOSE_REASON_BYTES} bytes of UTF-8, on a code point
 * boundary (never half a surrogate pair). Shared by the server and the client SDK.
 */
export function trimCloseReason(reason: string): string {
  // Each UTF-16 unit is at most 3 bytes of UTF-8: short reasons need no counting.
  if (reason.length * 3 <= MAX_CLOSE_REASON_BYTES || encoder.encode(reason).length <= MAX_CLOSE_REASON_BYTES) {
    return reason;
  }
  let bytes = 0;
  let fitting = '';
  for (const char of reason) {
    const size = encoder.encode(char).length;
    if (bytes + size > MAX_CLOSE_REASON_BYTES) {
      break;
    }
    bytes += size;
    fitting += char;
  }
  return fitting;
}
