import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type WebSocket from 'ws';
import { ErrorCode, Principal, RealtimeError, RealtimeGateway, RealtimeHub, type RealtimePrincipal } from '../../src/index.js';
import { RoomDto, SendDto } from './chat.dto.js';

/** What every member of a room receives for each `send`, under the event `message`. */
export interface ChatMessage {
  room: string;
  from: string;
  text: string;
  at: string;
}

/**
 * `/chat` (authenticated): rooms on `RealtimeHub`, so they span every instance that
 * shares the broker (`REDIS_URL`).
 * - `join {room}` → `{room, members}` (users present in the room on any instance);
 * - `leave {room}` → `{room}`;
 * - `send {room, text}` → every member receives `{"event": "message", "room", "data": ChatMessage}`
 *   once; the sender gets `{room, at}` as the reply. Sending to a room not joined: `FORBIDDEN`.
 */
@RealtimeGateway('/chat')
export class ChatGateway {
  constructor(private readonly hub: RealtimeHub) {}

  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: WebSocket, @MessageBody() { room }: RoomDto): Promise<{ room: string; members: string[] }> {
    await this.hub.join(client, room);
    return { room, members: await this.hub.presence(room) };
  }

  @SubscribeMessage('leave')
  async leave(@ConnectedSocket() client: WebSocket, @MessageBody() { room }: RoomDto): Promise<{ room: string }> {
    await this.hub.leave(client, room);
    return { room };
  }

  @SubscribeMessage('send')
  send(
    @ConnectedSocket() client: WebSocket,
    @MessageBody() { room, text }: SendDto,
    @Principal() user: RealtimePrincipal,
  ): { room: string; at: string } {
    if (!this.hub.isInRoom(client, room)) {
      throw new RealtimeError(ErrorCode.FORBIDDEN, `join the room "${room}" before sending to it`);
    }
    const message: ChatMessage = { room, from: user.sub, text, at: new Date().toISOString() };
    this.hub.emitToRoom(room, 'message', message);
    return { room, at: message.at };
  }
}
