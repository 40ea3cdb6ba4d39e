// The plugin's contender of bench/broadcast (see broadcast-contenders.ts for the frames):
// a public gateway whose `join` calls RealtimeHub.join and whose `publish` calls
// RealtimeHub.emitToRoom, on the default in-memory broker. Prints {"port": N} once listening.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type WebSocket from 'ws';
import type { PublishBody } from './broadcast-contenders.js';
import { serveNest } from './serve.js';
import { RealtimeGateway, RealtimeHub, RealtimeModule } from '../../src/index.js';
import { LOOPBACK_HANDSHAKE_RATE } from '../support/loopback.js';

/**
 * This plugin: a public gateway (members connect without a token, so no per-user presence
 * is kept), the default in-memory broker, heartbeat and validation at their defaults.
 */
@RealtimeGateway('/broadcast', { public: true })
class BroadcastGateway {
  constructor(private readonly hub: RealtimeHub) {}

  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): Promise<string> {
    await this.hub.join(client, room);
    return room;
  }

  @SubscribeMessage('publish')
  publish(@MessageBody() body: PublishBody): void {
    this.hub.emitToRoom(body.room, 'message', body.data);
  }
}

// Rate limits off (the publisher floods on purpose); connection limits raised over the
// 10,000 members, which all come from 127.0.0.1. Each member is in at most 2 rooms, under
// the default maxRoomsPerConnection (100); maxBufferedBytes stays at its default (1 MiB):
// members read as fast as they can, and a member cut as a slow consumer would show up as
// missing deliveries.
@Module({
  imports: [
    RealtimeModule.forRoot({
      limits: {
        messageRate: false,
        userMessageRate: false,
        maxConnections: 100_000,
        handshakeRate: LOOPBACK_HANDSHAKE_RATE,
        maxConnectionsPerIp: 100_000,
      },
    }),
  ],
  providers: [BroadcastGateway],
})
class BroadcastModule {}

/** Starts the plugin's broadcast server; resolves once it listens and has printed its port. */
export function servePlugin(): Promise<void> {
  return serveNest(BroadcastModule);
}
