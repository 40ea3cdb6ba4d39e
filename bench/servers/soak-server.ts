// The server side of bench/soak: a public gateway with rooms on the Redis broker at
// REDIS_URL. `join {room, since?}` answers the room's position (and whether it recovered),
// `send {room, text}` answers the message's offset once Redis took it. HISTORY=off turns
// room history off (for the throughput comparison). Prints {"port": N} once listening.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type WebSocket from 'ws';
import { serveNest } from './serve.js';
import { LOOPBACK_HANDSHAKE_RATE } from '../support/loopback.js';
import { RealtimeGateway, RealtimeHub, RealtimeModule, type StreamPosition } from '../../src/index.js';
import { RedisBroker } from '../../src/redis.js';

@RealtimeGateway('/soak', { public: true })
class SoakGateway {
  constructor(private readonly hub: RealtimeHub) {}

  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: WebSocket, @MessageBody() body: { room: string; since?: StreamPosition }): Promise<unknown> {
    return { room: body.room, ...(await this.hub.join(client, body.room, { since: body.since })) };
  }

  @SubscribeMessage('leave')
  async leave(@ConnectedSocket() client: WebSocket, @MessageBody() body: { room: string }): Promise<unknown> {
    await this.hub.leave(client, body.room);
    return { room: body.room };
  }

  @SubscribeMessage('send')
  async send(@MessageBody() body: { room: string; text: string }): Promise<unknown> {
    return { offset: await this.hub.emitToRoom(body.room, 'message', { text: body.text }) };
  }
}

const broker = new RedisBroker({ url: process.env.REDIS_URL, keyPrefix: process.env.KEY_PREFIX ?? 'soak:' });
const history = process.env.HISTORY === 'off' ? false : { size: Number(process.env.HISTORY_SIZE ?? 1000), ttlMs: 300_000 };

// Rate limits off: the throughput part publishes as fast as Redis takes it.
@Module({
  imports: [
    RealtimeModule.forRoot({
      broker,
      history,
      limits: { messageRate: false, userMessageRate: false, maxConnectionsPerIp: 5000, handshakeRate: LOOPBACK_HANDSHAKE_RATE },
    }),
  ],
  providers: [SoakGateway],
})
class SoakModule {}

await serveNest(SoakModule);
