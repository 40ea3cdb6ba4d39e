// The raw `ws` baseline of bench/heartbeat: the heartbeat `ws`'s README shows (every
// `HB_INTERVAL_MS`, terminate a client that did not answer the last ping, ping the rest),
// with pongs marking a client alive. Prints {"port": N} once listening.
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const intervalMs = Number(process.env.HB_INTERVAL_MS ?? 25_000);
const alive = new WeakSet<WebSocket>();

const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
function markAlive(this: WebSocket): void {
  alive.add(this);
}
wss.on('connection', (socket) => {
  alive.add(socket);
  socket.on('pong', markAlive);
  socket.on('message', markAlive);
});
setInterval(() => {
  for (const socket of wss.clients) {
    if (!alive.delete(socket)) {
      socket.terminate();
    } else {
      socket.ping();
    }
  }
}, intervalMs);
http.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (http.address() as { port: number }).port })}\n`));
process.on('SIGTERM', () => process.exit(0));
