import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type WebSocket from 'ws';
import { ErrorCode, Principal, RealtimeError, RealtimeGateway, RealtimeHub, type RealtimePrincipal } from '../../src/index.js';
import { JoinDto, RoomDto, SendDto } from './chat.dto.js';

/** What every member of a room receives for each `send`, under the event `message`. */
export interface ChatMessage {
  room: string;
  from: string;
  text: string;
  at: string;
}

/** The reply to `join`. */
export interface JoinReply {
  room: string;
  members: string[];
  offset?: number;
  epoch?: string;
  recovered?: boolean;
}

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
export class ChatGateway {
  constructor(private readonly hub: RealtimeHub) {}

  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: WebSocket, @MessageBody() { room, since }: JoinDto): Promise<JoinReply> {
    const position = await this.hub.join(client, room, { since });
    return { room, members: await this.hub.presence(room), ...position };
  }

  @SubscribeMessage('leave')
  async leave(@ConnectedSocket() client: WebSocket, @MessageBody() { room }: RoomDto): Promise<{ room: string }> {
    await this.hub.leave(client, room);
    return { room };
  }

  @SubscribeMessage('send')
  async send(
    @ConnectedSocket() client: WebSocket,
    @MessageBody() { room, text }: SendDto,
    @Principal() user: RealtimePrincipal,
  ): Promise<{ room: string; at: string; offset?: number }> {
    if (!this.hub.isInRoom(client, room)) {
      throw new RealtimeError(ErrorCode.FORBIDDEN, `join the room "${room}" before sending to it`);
    }
    const message: ChatMessage = { room, from: user.sub, text, at: new Date().toISOString() };
    const offset = await this.hub.emitToRoom(room, 'message', message);
    return { room, at: message.at, offset };
  }
}
