// The broadcast servers of bench/broadcast: one contender per process, chosen by CONTENDER.
// Both speak the same frames: `{"event":"join","id","data":<room>}` joins a room and is
// answered `{"event":"join","id","data":<room>}`; `{"event":"publish","data":{"room","data"}}`
// (no id, no reply) sends `{"event":"message","room","data"}` to every member of the room.
// Prints {"port": N} once listening. Started by the benchmark, pinned to one core.
// The plugin's server is in broadcast-plugin.ts, loaded only when it is the contender: the
// naive server's process then starts in a fraction of the time, without Nest.
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';

/** What a publisher sends as `data` of its `publish` frame. */
export interface PublishBody {
  room: string;
  data: unknown;
}

/**
 * The naive loop of the broadcast target: rooms as Sets of sockets, and every member's copy of a
 * message serialized in the loop, one `JSON.stringify` per recipient.
 */
async function naive(): Promise<void> {
  const rooms = new Map<string, Set<WebSocket>>();
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (socket) => {
    const joined = new Set<string>();
    socket.on('message', (raw) => {
      let frame: { event?: unknown; id?: unknown; data?: unknown };
      try {
        frame = JSON.parse(raw.toString()) as typeof frame;
      } catch {
        socket.send('{"event":"error","data":{"code":"BAD_REQUEST"}}');
        return;
      }
      if (frame.event === 'join' && typeof frame.data === 'string') {
        let room = rooms.get(frame.data);
        if (!room) {
          room = new Set();
          rooms.set(frame.data, room);
        }
        room.add(socket);
        joined.add(frame.data);
        socket.send(JSON.stringify({ event: 'join', id: frame.id, data: frame.data }));
      } else if (frame.event === 'publish') {
        const { room: name, data } = frame.data as PublishBody;
        const room = rooms.get(name) ?? new Set<WebSocket>();
        for (const ws of room) ws.send(JSON.stringify({ event: 'message', room: name, data }));
      } else {
        socket.send('{"event":"error","data":{"code":"UNKNOWN_EVENT"}}');
      }
    });
    socket.on('close', () => {
      for (const name of joined) {
        rooms.get(name)?.delete(socket);
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ port: (http.address() as { port: number }).port })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}

const contenders: Record<string, () => Promise<void>> = {
  naive,
  plugin: async () => (await import('./broadcast-plugin.js')).servePlugin(),
};

const start = contenders[process.env.CONTENDER ?? ''];
if (!start) {
  throw new Error(`CONTENDER must be one of ${Object.keys(contenders).join(', ')}`);
}
await start();
