// The server side of bench/redis-latency: a public gateway whose `send` broadcasts to a
// room through RealtimeHub, on the Redis broker at REDIS_URL; HISTORY=off turns room
// history off. Prints {"port": N} once listening.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type WebSocket from 'ws';
import { serveNest } from './serve.js';
import { RealtimeGateway, RealtimeHub, RealtimeModule } from '../../src/index.js';
import { RedisBroker } from '../../src/redis.js';

@RealtimeGateway('/rooms', { public: true })
class RoomsBench {
  constructor(private readonly hub: RealtimeHub) {}

  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): Promise<string> {
    await this.hub.join(client, room);
    return room;
  }

  @SubscribeMessage('send')
  send(@MessageBody() body: { room: string; t: number }): void {
    this.hub.emitToRoom(body.room, 'message', body.t);
  }
}

const broker = process.env.REDIS_URL ? new RedisBroker({ url: process.env.REDIS_URL }) : undefined;

// Rate limits off: the publisher sends 5,000 messages a second on purpose.
@Module({
  imports: [
    RealtimeModule.forRoot({
      broker,
      history: process.env.HISTORY === 'off' ? false : {},
      limits: { messageRate: false, userMessageRate: false },
    }),
  ],
  providers: [RoomsBench],
})
class BenchModule {}

await serveNest(BenchModule);
