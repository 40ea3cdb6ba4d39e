import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type WebSocket from 'ws';
import {
  Emits,
  ErrorCode,
  Principal,
  RealtimeError,
  RealtimeGateway,
  RealtimeHub,
  type RealtimePrincipal,
  Replies,
} from '../../src/index.js';
import { ChatMessage, JoinDto, JoinReply, RoomDto, SendDto, SendReply } from './chat.dto.js';

/**
 * `/chat` (authenticated): rooms on `RealtimeHub`, so they span every instance that
 * shares the broker (`REDIS_URL`).
 * - `join {room, since?}` → `{room, members, offset, epoch, recovered?}` (users present in the
 *   room on any instance, and the room's position); with `since: {offset, epoch}` the
 *   messages missed since follow the reply when `recovered` is true (docs/protocol.md §7);
 * - `leave {room}` → `{room}`;
 * - `send {room, text}` → every member receives `{"event": "message", "room", "offset", "data": ChatMessage}`
 *   once; the sender gets `{room, at, offset}` as the reply once the message is on its way,
 *   or `UNAVAILABLE` when the broker cannot take it (nobody got it; try again).
 *   Sending to a room not joined: `FORBIDDEN`.
 */
@RealtimeGateway('/chat')
@Emits('message', ChatMessage, {
  description: 'A message sent to a room the client is in (with the room and, while history is on, its offset).',
})
export class ChatGateway {
  constructor(private readonly hub: RealtimeHub) {}

  @SubscribeMessage('join')
  @Replies(JoinReply)
  async join(@ConnectedSocket() client: WebSocket, @MessageBody() { room, since }: JoinDto): Promise<JoinReply> {
    const position = await this.hub.join(client, room, { since });
    return { room, members: await this.hub.presence(room), ...position };
  }

  @SubscribeMessage('leave')
  @Replies(RoomDto)
  async leave(@ConnectedSocket() client: WebSocket, @MessageBody() { room }: RoomDto): Promise<{ room: string }> {
    await this.hub.leave(client, room);
    return { room };
  }

  @SubscribeMessage('send')
  @Replies(SendReply)
  async send(
    @ConnectedSocket() client: WebSocket,
    @MessageBody() { room, text }: SendDto,
    @Principal() user: RealtimePrincipal,
  ): Promise<SendReply> {
    if (!this.hub.isInRoom(client, room)) {
      throw new RealtimeError(ErrorCode.FORBIDDEN, `join the room "${room}" before sending to it`);
    }
    const message: ChatMessage = { room, from: user.sub, text, at: new Date().toISOString() };
    const offset = await this.hub.emitToRoom(room, 'message', message);
    return { room, at: message.at, offset };
  }
}
