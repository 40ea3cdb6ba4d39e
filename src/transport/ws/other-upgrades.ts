import { type IncomingMessage, type Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { refuseUpgrade } from './upgrade-response.js';

/** Whether `request` asks for a WebSocket (`Upgrade: websocket`), not another protocol. */
export function asksForWebSocket(request: IncomingMessage): boolean {
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket';
}

/**
 * Serves a request whose `Upgrade` names another protocol (`h2c`, which `curl --http2` and
 * HTTP/2 clients such as Java's `HttpClient` send on `http://`) as the plain HTTP/1.1
 * request it also is: a server may ignore `Upgrade`. Once a server has an `'upgrade'`
 * listener, Node hands it every request with that header, so without this the
 * application's routes would never see them. Node has not read such a request's body: one
 * with a body is refused (400), not served without it. The connection closes after the
 * response. With other `'upgrade'` listeners on the server (the application's own), the
 * request is left to them; a socket none of them has written to within `waitMs` is closed.
 */
export function serveAsHttp(
  server: HttpServer,
  request: IncomingMessage,
  socket: Duplex,
  own: (listener: Function) => boolean,
  waitMs: number,
): void {
  if (server.listeners('upgrade').some((listener) => !own(listener))) {
    // Theirs, unless none of them answers: then the socket is closed, not held for good.
    setTimeout(() => (socket as Socket).bytesWritten === 0 && socket.destroy(), waitMs).unref();
    return;
  }
  socket.on('error', () => socket.destroy()); // Node took its own listeners off for the upgrade
  const length = request.headers['content-length'];
  if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    const protocol = JSON.stringify(String(request.headers.upgrade).slice(0, 32));
    refuseUpgrade(
      socket,
      400,
      'BAD_REQUEST',
      `a request with a body cannot ask to upgrade to ${protocol}: send it without the Upgrade header`,
    );
    return;
  }
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket as Socket);
  response.once('finish', () => {
    response.detachSocket(socket as Socket);
    socket.end();
  });
  server.emit('request', request, response);
}
