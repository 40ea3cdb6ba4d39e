import type { IncomingMessage } from 'node:http';
import { BEARER_PROTOCOL_PREFIX } from '../protocol/envelope.js';

/** Where a token was found, first match wins in this order. */
export type TokenSource = 'header' | 'subprotocol' | 'query';

/** A token as it arrived, not yet verified. */
export interface ExtractedToken {
  token: string;
  source: TokenSource;
}

/** `Bearer` and its token; Node trims a header's value, so a bare `Bearer` has none. */
const BEARER = /^Bearer(?:[ \t]+(.*))?$/i;

/**
 * Finds a token: the `Authorization: Bearer` header, then a `bearer.<jwt>` entry of
 * `Sec-WebSocket-Protocol`, then the `access_token` query parameter. An empty value
 * where a token is announced counts as found (and fails verification).
 */
export function extractToken(request: IncomingMessage): ExtractedToken | undefined {
  const authorization = request.headers.authorization;
  const bearer = authorization === undefined ? null : BEARER.exec(authorization);
  // Another scheme (a browser's Basic credentials for the site, say) is not ours: look further.
  if (bearer) {
    return { token: (bearer[1] ?? '').trim(), source: 'header' };
  }
  const protocols = request.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    for (const entry of protocols.split(',')) {
      const value = entry.trim();
      if (value.startsWith(BEARER_PROTOCOL_PREFIX)) {
        return { token: value.slice(BEARER_PROTOCOL_PREFIX.length), source: 'subprotocol' };
      }
    }
  }
  const url = request.url ?? '';
  const query = url.indexOf('?');
  if (query !== -1) {
    const token = new URLSearchParams(url.slice(query + 1)).get('access_token');
    if (token !== null) {
      return { token, source: 'query' };
    }
  }
  return undefined;
}
