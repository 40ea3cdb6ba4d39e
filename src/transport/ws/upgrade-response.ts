import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Why an upgrade was refused, as counted in metrics (`realtime_upgrades_refused_total`):
 * - `not-found`: no gateway at the path (404);
 * - `draining`: the server is shutting down (503);
 * - `server-full`: the instance is at `maxConnections` (503);
 * - `address-connections`, `user-connections`: a per-address or per-user connection limit (429);
 * - `handshake-rate`: the address's handshake rate (429);
 * - `unauthorized`: no valid token (401);
 * - `origin`: an `Origin` outside the allowlist (403);
 * - `forbidden`: the gateway's roles or the application's `verifyConnection` hook (403);
 * - `timeout`: the handshake or the hook took too long (503);
 * - `error`: the handshake failed unexpectedly (503);
 * - `bad-request`: a malformed WebSocket handshake (a bad `Sec-WebSocket-Key`,
 *   `Sec-WebSocket-Version` or `Sec-WebSocket-Protocol`) that `ws` refused (400; 405 for a
 *   method other than GET).
 */
export type UpgradeRefusalCause =
  | 'not-found'
  | 'draining'
  | 'server-full'
  | 'address-connections'
  | 'user-connections'
  | 'handshake-rate'
  | 'unauthorized'
  | 'origin'
  | 'forbidden'
  | 'timeout'
  | 'error'
  | 'bad-request';

/**
 * Answers an HTTP upgrade request with a plain HTTP error response and a JSON body
 * `{"error": code, "message": ...}`, then closes the socket. No WebSocket is created.
 */
export function refuseUpgrade(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: code, message });
  let head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    head += `${name}: ${value}\r\n`;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`${head}\r\n${body}`);
}
