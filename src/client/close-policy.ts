import { CloseCode } from '../protocol/close-codes.js';
import type { WebSocketLike } from './websocket-like.js';

/** Close codes after which the client stops for good (protocol §5). */
const FINAL_CLOSES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL,
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.FORBIDDEN,
]);

/** The close code the client uses when its heartbeat finds the link dead (4000-4999 are free for applications). */
export const DEAD_LINK_CLOSE = 4000;

/**
 * Why a close ends the client for good, or undefined when it reconnects: a final close code,
 * or a 4001 (token expired) with no provider (`canRenew`) to get a new token.
 */
export function finalClose(code: number, reason: string, canRenew: boolean): string | undefined {
  if (FINAL_CLOSES.has(code)) {
    return `the server closed the connection for good (${code} ${reason})`;
  }
  return code === CloseCode.TOKEN_EXPIRED && !canRenew
    ? 'the token expired (4001) and there is no token provider to get a new one'
    : undefined;
}

/**
 * Drops a socket the client gave up on (no pong, no handshake): at once where the WebSocket
 * allows it (`ws`'s `terminate`), else with a close that says why.
 */
export function abandon(socket: WebSocketLike, reason: string): void {
  const terminate = (socket as { terminate?: () => void }).terminate;
  terminate ? terminate.call(socket) : socket.close(DEAD_LINK_CLOSE, reason);
}

/** `code` when a client may send it in a close frame (1000, 3000-4999), else 1000. */
export function clientCloseCode(code: number): number {
  return code === CloseCode.NORMAL || (code >= 3000 && code <= 4999) ? code : CloseCode.NORMAL;
}
