import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/**
 * Drops a socket whose first request (HTTP or upgrade) has not arrived within `ms`: a
 * client that sends its headers slowly must not hold a socket. Node's own
 * `headersTimeout` is only checked every 30 s. The deadline is a timer of its own, so
 * the application's socket timeouts are left alone; on TLS servers it is armed on the
 * TLS socket, the one requests arrive on. Returns a function that removes it.
 */
export function armHeadersDeadline(server: HttpServer, ms: number): () => void {
  const deadlines = new WeakMap<Socket, NodeJS.Timeout>();
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
  // Shared listeners, removed once the deadline is lifted: a long-lived WebSocket keeps
  // neither a timer nor a closure of its handshake.
  const onClose = function (this: Socket): void {
    clearTimeout(deadlines.get(this));
  };
  const onSocket = (socket: Socket): void => {
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    deadlines.set(socket, timer);
    socket.once('close', onClose);
  };
  const lift = (request: IncomingMessage): void => {
    clearTimeout(deadlines.get(request.socket));
    deadlines.delete(request.socket);
    request.socket.off('close', onClose);
  };
  server.on(event, onSocket);
  server.on('request', lift);
  // Upgrades (WebSocket handshakes) lift it too; the handshake then has its own deadline.
  server.prependListener('upgrade', lift);
  return () => {
    server.off(event, onSocket);
    server.off('request', lift);
    server.off('upgrade', lift);
  };
}
