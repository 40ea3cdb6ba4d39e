import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/** Past the server's `keepAliveTimeout`, its own idle close comes first. */
const KEEP_ALIVE_MARGIN_MS = 1000;

/** What {@link armHeadersDeadline} returns. */
export interface HeadersDeadline {
  /** Destroys every socket waiting for a request: idle keep-alive ones and ones whose headers are unfinished. */
  dropWaiting(): void;
  /** Removes the deadline from the server. */
  disarm(): void;
  /** Its own `'upgrade'` listener on the server. */
  readonly upgradeListener: (request: IncomingMessage) => void;
}

/**
 * Drops a socket on which no request (HTTP or upgrade) has arrived in full within `ms`:
 * its first request, and each next one on a keep-alive socket, counted from the end of
 * the previous response (then at least the server's `keepAliveTimeout`). A client that sends its headers slowly must not hold a socket;
 * Node's own `headersTimeout` is only checked every 30 s. The deadline is a timer of its
 * own, so the application's socket timeouts are left alone; on TLS servers it is armed
 * on the TLS socket, the one requests arrive on.
 *
 * The sockets waiting for a request are known, so a shutdown can end them at once
 * ({@link HeadersDeadline.dropWaiting}) instead of waiting for their deadline.
 */
export function armHeadersDeadline(server: HttpServer, ms: number): HeadersDeadline {
  /** Sockets waiting for a request, with their deadline. */
  const waiting = new Map<Socket, NodeJS.Timeout>();
  /** Requests under way per socket (pipelined ones included): the deadline waits for the last. */
  const active = new WeakMap<Socket, number>();
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
  // Shared listeners: a long-lived WebSocket keeps neither a timer nor a closure of its handshake.
  const onClose = function (this: Socket): void {
    clearTimeout(waiting.get(this));
    waiting.delete(this);
  };
  const arm = (socket: Socket, after: number): void => {
    if (socket.destroyed) {
      return;
    }
    const timer = setTimeout(() => {
      waiting.delete(socket); // its 'close' listener may be gone (an upgrade served as HTTP)
      socket.destroy();
    }, after);
    timer.unref();
    waiting.set(socket, timer);
  };
  const onSocket = (socket: Socket): void => {
    socket.on('close', onClose);
    arm(socket, ms);
  };
  const lift = (socket: Socket): void => {
    clearTimeout(waiting.get(socket));
    waiting.delete(socket);
  };
  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const socket = request.socket;
    lift(socket);
    active.set(socket, (active.get(socket) ?? 0) + 1);
    response.once('finish', () => {
      const left = (active.get(socket) ?? 1) - 1;
      active.set(socket, left);
      if (left === 0) {
        // Keep-alive: the next request gets a deadline too, never shorter than the idle
        // time the server grants between requests (`keepAliveTimeout`, which closes idle
        // sockets itself), so that a proxy's long-lived upstream sockets are left alone.
        arm(socket, Math.max(ms, server.keepAliveTimeout + KEEP_ALIVE_MARGIN_MS));
      }
    });
  };
  const onUpgrade = (request: IncomingMessage): void => {
    // The handshake then has its own deadline; the socket leaves HTTP for good.
    lift(request.socket);
    request.socket.off('close', onClose);
  };
  server.on(event, onSocket);
  server.on('request', onRequest);
  server.prependListener('upgrade', onUpgrade);
  return {
    upgradeListener: onUpgrade,
    dropWaiting(): void {
      for (const socket of [...waiting.keys()]) {
        socket.destroy();
      }
    },
    disarm(): void {
      server.off(event, onSocket);
      server.off('request', onRequest);
      server.off('upgrade', onUpgrade);
    },
  };
}
