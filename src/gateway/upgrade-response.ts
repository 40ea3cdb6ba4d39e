import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

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
