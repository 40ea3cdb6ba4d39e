import { createHmac, createSign, type KeyObject } from 'node:crypto';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Seconds since the epoch, as JWT times are. */
export const now = (): number => Math.floor(Date.now() / 1000);

/**
 * Builds a JWT by hand, so that tests can make the hostile ones no library would sign:
 * `alg: none`, HMAC with a public key, odd headers, string `exp`, a payload that is not JSON.
 */
export function handMadeToken(
  header: Record<string, unknown>,
  payload: Record<string, unknown> | string,
  sign: { hmac?: string | Buffer | KeyObject; rsa?: KeyObject } = {},
): string {
  // A string payload is taken as it is, not as JSON: a token whose payload does not parse.
  const body = typeof payload === 'string' ? Buffer.from(payload).toString('base64url') : b64(payload);
  const input = `${b64(header)}.${body}`;
  if (sign.hmac !== undefined) {
    return `${input}.${createHmac('sha256', sign.hmac).update(input).digest('base64url')}`;
  }
  if (sign.rsa) {
    return `${input}.${createSign('RSA-SHA256').update(input).sign(sign.rsa).toString('base64url')}`;
  }
  return `${input}.`;
}
