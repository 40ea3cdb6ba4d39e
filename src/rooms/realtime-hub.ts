import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { BrokerHealth, RealtimeBroker, StreamPosition } from '../broker/broker.interface.js';
import { messageOf } from '../broker/broker-errors.js';
import { ContractGuard } from '../broker/contract-guard.js';
import { MemoryBroker } from '../broker/memory-broker.js';
import type { Connection } from '../gateway/connection.js';
import { connectionOf } from '../gateway/connection-registry.js';
import type { ServerRequestOptions } from '../gateway/server-requests.js';
import { PushFrame } from '../transport/push-frame.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { RealtimeError } from '../realtime.errors.js';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';
import { RealtimeMetrics } from '../metrics/realtime-metrics.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { resolveHistory, resolveLimits } from '../options/resolve-options.js';
import { trimCloseReason } from '../protocol/close-reason.js';
import {
  ALL_CHANNEL,
  type ClusterMessage,
  decodeClusterMessage,
  encodeClusterMessage,
  isFrom,
  roomChannel,
  targetOf,
  userChannel,
} from './cluster-envelope.js';
import { checkJoin } from './room-name.js';
import { LocalPresence } from './local-presence.js';
import { PresenceEvents } from './presence-events.js';
import type { EmitToRoomOptions, JoinOptions, RoomPosition } from './room-options.js';
import { RoomPublisher } from './room-publisher.js';
import { RoomStreams } from './room-streams.js';
import { UserChannels } from './user-channels.js';

/**
 * Rooms, user targeting, broadcast and presence, the same on one instance (in memory)
 * and on many (through the module's `broker`). Inject it in gateways and services.
 *
 * Clients are the `ws` sockets handlers receive (`@ConnectedSocket()`); users are the
 * `sub` of their tokens. A connection leaves every room when it closes, however it
 * closes, right after the synchronous part of its gateway's `handleDisconnect` has run.
 * Every push is serialized once, whatever the number of recipients, and reaches each once.
 *
 * @example
 * ```ts
 * @SubscribeMessage('join')
 * async join(@ConnectedSocket() client: WebSocket, @MessageBody() { room }: RoomDto) {
 *   await this.hub.join(client, room);
 *   return { room, members: await this.hub.presence(room) };
 * }
 * ```
 */
@Injectable()
export class RealtimeHub implements OnModuleInit, OnApplicationShutdown {
  /** This instance's id on the broker. */
  readonly instanceId = randomUUID();
  private readonly logger = new Logger('RealtimeHub');
  private readonly broker: RealtimeBroker;
  private readonly rooms = new Map<string, Set<Connection>>();
  private readonly everyone = new Set<Connection>();
  private readonly userChannels: UserChannels;
  /** Room subscriptions in flight, which later joiners must wait for too. */
  private readonly pendingWork = new Map<string, Promise<void>>();
  private readonly localPresence: LocalPresence;
  /** Presence events; undefined unless `presence.events`. */
  private readonly presenceEvents: PresenceEvents | undefined;
  /** Room offsets, history and recovery; undefined when `history: false`. */
  private readonly streams: RoomStreams | undefined;
  private readonly publisher: RoomPublisher;
  private readonly metrics: RealtimeMetrics | undefined;

  constructor(@Optional() @Inject(REALTIME_MODULE_OPTIONS) options?: RealtimeModuleOptions, @Optional() metrics?: RealtimeMetrics) {
    const { brokerTimeoutMs } = resolveLimits(options?.limits);
    this.broker = new ContractGuard(options?.broker ?? new MemoryBroker(), brokerTimeoutMs);
    this.metrics = options?.metrics === false ? undefined : metrics;
    this.userChannels = new UserChannels(this.broker, (work, what) => this.settle(work, what));
    const history = resolveHistory(options?.history);
    this.publisher = new RoomPublisher(this.broker, this.instanceId, history, this.metrics, {
      members: (room) => this.rooms.get(room),
      deliver: (room, frame, except) => this.deliver(this.rooms.get(room), frame, except),
      delivered: (room, position) => this.streams?.delivered(room, position, brokerTimeoutMs),
    });
    this.streams = history
      ? new RoomStreams(
          this.broker,
          history,
          this.logger,
          (payload, live) => this.publisher.push(payload, live),
          (room) => this.rooms.get(room),
          (count) => this.metrics?.pushed(count),
        )
      : undefined;
    const host = { rooms: this.rooms, streams: this.streams, metrics: this.metrics };
    this.presenceEvents = PresenceEvents.from(options?.presence, this.broker, this.instanceId, this.logger, host);
    this.localPresence = new LocalPresence(this.broker, (work, what) => this.settle(work, what), this.presenceEvents);
    this.metrics?.watchBroker(() => this.broker.health());
  }

  async onModuleInit(): Promise<void> {
    await this.broker.start(
      this.instanceId,
      (channel, payload, position) => this.onBrokerMessage(channel, payload, position),
      () => this.streams?.catchUp(),
    );
    await this.settle(this.broker.subscribe(ALL_CHANNEL), 'subscribe'); // unconfirmed: logged, restored by the broker
  }

  /** Runs after the gateways have closed their connections (and left their rooms). */
  async onApplicationShutdown(): Promise<void> {
    this.presenceEvents?.stop();
    await this.settle(this.broker.close(), 'close'); // a failure is logged; the shutdown goes on
  }

  /** The broker's health, for a health endpoint. */
  health(): BrokerHealth {
    return this.broker.health();
  }

  /**
   * Adds a client to a room. Resolves once messages published to the room on any
   * instance will reach it, and its user shows in the room's presence, with the room's
   * position (undefined when history is off, or the broker could not tell and nothing is
   * known here). With `options.since`, the messages missed since are delivered right after
   * the reply of the request that joined, before any newer one (`recovered: true`), or not
   * at all (`recovered: false`, always for a client in the room already); when the broker
   * cannot tell now, it rejects with `UNAVAILABLE` and the client is not in the room.
   */
  async join(client: object, room: string, options: JoinOptions = {}): Promise<RoomPosition | undefined> {
    checkJoin(room, options.since);
    const connection = this.connection(client);
    if (!this.everyone.has(connection)) {
      return undefined;
    }
    if (connection.rooms.has(room)) {
      // Already in it (or joining it: that join first; once it failed, this one joins afresh).
      await Promise.all([this.pendingWork.get(roomChannel(room)), this.streams?.answered(room, connection)]);
      return connection.rooms.has(room) ? this.streams?.memberPosition(room, options.since) : this.join(client, room, options);
    }
    const limit = connection.settings.maxRoomsPerConnection;
    if (connection.rooms.size >= limit) {
      throw new RealtimeError(ErrorCode.FORBIDDEN, `too many rooms: a connection may be in ${limit}`);
    }
    connection.joinRoom(room);
    let members = this.rooms.get(room);
    if (!members) {
      this.rooms.set(room, (members = new Set()));
      this.streams?.open(room);
      this.presenceEvents?.opened(room, connection.user);
      this.pendingWork.set(roomChannel(room), this.settle(this.broker.subscribe(roomChannel(room)), 'subscribe'));
    }
    members.add(connection);
    const held = this.streams?.hold(room, connection); // its pushes wait for the join's reply
    // Joiners who arrive while the room's subscription is being made wait for it too.
    const waits = [this.pendingWork.get(roomChannel(room))];
    if (connection.user !== undefined) {
      waits.push(this.localPresence.add(room, connection.user));
    }
    await Promise.all(waits);
    if (!connection.rooms.has(room)) {
      return undefined;
    }
    try {
      return await this.streams?.recover(room, connection, options.since, held);
    } catch (error) {
      await this.leaveRoom(connection, room); // not joined: the client tries again
      throw error;
    }
  }

  /** Removes a client from a room; a no-op when it is not in it. */
  async leave(client: object, room: string): Promise<void> {
    return this.leaveRoom(this.connection(client), room);
  }

  /** The rooms a client is in. */
  roomsOf(client: object): string[] {
    return [...(connectionOf(client)?.rooms ?? [])];
  }

  /** Whether a client is in a room. */
  isInRoom(client: object, room: string): boolean {
    return connectionOf(client)?.rooms.has(room) ?? false;
  }

  /** The clients of this instance in a room. */
  localClients(room: string): object[] {
    return [...(this.rooms.get(room) ?? [])].map((connection) => connection.socket);
  }

  /** The clients of this instance that belong to a user. */
  localClientsOf(sub: string): object[] {
    return [...this.userChannels.connectionsOf(sub)].map((connection) => connection.socket);
  }

  /** The distinct users (`sub`) present in a room on any instance, sorted; this instance's when the broker does not answer (logged); with presence events, as they tell it (a user who just went is listed until told as leaving). */
  presence(room: string): Promise<string[]> {
    return this.localPresence.everywhere(room);
  }

  /**
   * Sends `{event, room, offset, data}` to every member of a room on every instance,
   * except `options.except`. Resolves with the message's offset once the broker took it
   * and this instance's members were handed it (at most `limits.brokerTimeoutMs` later),
   * so a reply sent then follows the sender's own copy; undefined when history is off.
   * Rejects with a `RealtimeError` `UNAVAILABLE` when the broker cannot take it, and then
   * no member got it. Not awaiting it is safe: a refusal is logged by the broker, never an
   * unhandled rejection.
   */
  emitToRoom(room: string, event: string, data: unknown, options: EmitToRoomOptions = {}): Promise<number | undefined> {
    const push = PushFrame.of({ event, room, data });
    const except = options.except === undefined ? undefined : connectionOf(options.except);
    const result = this.publisher.emit(room, push, except);
    result.catch(ignoreRefusal); // handled for whoever does not await it; an awaiting caller still gets the rejection
    return result;
  }

  /** Sends `{event, data}` to every connection of a user (`sub`) on every instance. */
  emitToUser(sub: string, event: string, data: unknown): void {
    const push = PushFrame.of({ event, data });
    this.deliver(this.userChannels.connectionsOf(sub), push, undefined);
    this.publish(userChannel(sub), { type: 'message', origin: this.instanceId, frame: push.wire });
  }

  /** Sends `{event, data}` to every connection of every gateway on every instance. */
  emitToAll(event: string, data: unknown): void {
    const push = PushFrame.of({ event, data });
    this.deliver(this.everyone, push, undefined);
    this.publish(ALL_CHANNEL, { type: 'message', origin: this.instanceId, frame: push.wire });
  }

  /**
   * Asks a client of this instance to answer `event` (protocol 1.2; the client SDK answers
   * with `handle()`) and resolves with the `data` of its reply. Rejects with a
   * `ClientReplyError`: the client's own error code, `TIMEOUT` after `options.timeoutMs`
   * (default 10 s), or `DISCONNECTED` when the connection closes (or is closing) first.
   * @throws TypeError at once for a bad event or timeout, or a client that is not a gateway's.
   */
  request<T = unknown>(client: object, event: string, data?: unknown, options: ServerRequestOptions = {}): Promise<T> {
    return this.connection(client).ask(event, data, options) as Promise<T>;
  }

  /**
   * Closes every connection of a user on every instance with 4003 (forbidden): logout,
   * ban, revoked token. It does not keep the user from connecting again: refuse their
   * tokens (`auth.verifyConnection`) for that. The reason is cut to the 123 bytes a close
   * frame can carry.
   */
  disconnectUser(sub: string, reason = 'forbidden'): void {
    const fitting = trimCloseReason(String(reason));
    this.userChannels.kick(sub, fitting);
    this.publish(userChannel(sub), { type: 'kick', origin: this.instanceId, reason: fitting });
  }

  /**
   * @internal The adapter holds a user before completing an upgrade, so that messages to
   * the user reach the connection from the start. The connection takes the hold over when
   * it is attached (and gives it up when it is detached); an upgrade that fails releases it.
   */
  holdUser(sub: string): Promise<void> {
    return this.userChannels.hold(sub);
  }

  /** @internal Releases a hold taken by {@link holdUser} that no connection has taken over (a failed upgrade's). */
  releaseUser(sub: string): void {
    this.userChannels.release(sub);
  }

  /** @internal The adapter registers every connection once it is set up (its user already held). */
  attach(connection: Connection): void {
    this.everyone.add(connection);
    const sub = connection.principal?.sub;
    if (sub !== undefined) {
      this.userChannels.add(connection, sub);
    }
  }

  /**
   * @internal A connection opened without a token signed in with an in-band `auth`: from
   * now on it is its user's, in user targeting and in the presence of its rooms.
   */
  async identify(connection: Connection): Promise<void> {
    const sub = connection.principal?.sub;
    if (sub === undefined || connection.user !== undefined) {
      return;
    }
    await this.holdUser(sub);
    if (!this.everyone.has(connection) || connection.user !== undefined) {
      this.releaseUser(sub); // closed meanwhile, or identified by an overlapping call
      return;
    }
    this.userChannels.add(connection, sub);
    await Promise.all([...connection.rooms].map((room) => this.localPresence.add(room, sub)));
  }

  /** @internal The adapter unregisters a connection once it has closed and its disconnect hook ran. */
  detach(connection: Connection): void {
    if (!this.everyone.delete(connection)) {
      return;
    }
    for (const room of [...connection.rooms]) {
      void this.leaveRoom(connection, room);
    }
    this.userChannels.remove(connection);
  }

  private async leaveRoom(connection: Connection, room: string): Promise<void> {
    if (!connection.rooms.delete(room)) {
      return;
    }
    const waits: Promise<void>[] = [];
    const members = this.rooms.get(room);
    this.streams?.forget(room, connection);
    if (members?.delete(connection) && members.size === 0) {
      this.rooms.delete(room);
      this.streams?.close(room);
      this.presenceEvents?.closed(room);
      this.pendingWork.delete(roomChannel(room));
      waits.push(this.settle(this.broker.unsubscribe(roomChannel(room)), 'unsubscribe'));
    }
    if (connection.user !== undefined) {
      waits.push(this.localPresence.remove(room, connection.user));
    }
    await Promise.all(waits);
  }

  /** A broker call that cannot reject: a broker breaking its contract is logged, never fatal. */
  private settle(work: Promise<void>, what: string): Promise<void> {
    return work.catch((error: unknown) => this.logger.error(`broker ${what} failed: ${messageOf(error)}`));
  }

  private deliver(connections: Iterable<Connection> | undefined, push: PushFrame, except: Connection | undefined): void {
    // Encoded and framed once per encoding: the same bytes for every recipient of each.
    let sent = 0;
    for (const connection of connections ?? []) {
      sent += connection !== except && connection.sendPush(push) ? 1 : 0;
    }
    this.metrics?.pushed(sent);
  }

  private onBrokerMessage(channel: string, payload: string, position: StreamPosition | undefined): void {
    try {
      if (position && this.streams) {
        const target = targetOf(channel);
        if (target?.to === 'room') {
          this.metrics?.receivedOne();
          this.streams.receive(target.room, payload, position);
          return;
        }
      }
      this.handleBrokerMessage(channel, payload);
    } catch (error) {
      // This runs inside the broker client's event handler, where a throw would be fatal.
      this.logger.error(`broker message on ${channel} failed: ${messageOf(error)}`);
    }
  }

  private handleBrokerMessage(channel: string, payload: string): void {
    if (isFrom(payload, this.instanceId)) {
      return; // Delivered locally when it was published.
    }
    this.metrics?.receivedOne();
    const target = targetOf(channel);
    const message = decodeClusterMessage(payload);
    if (!target || !message) {
      this.logger.debug(`message on channel ${channel} ignored: not a cluster message`);
    } else if (message.type === 'presence') {
      this.presenceEvents?.changedElsewhere(target);
    } else if (message.type === 'kick') {
      if (target.to === 'user') {
        this.userChannels.kick(target.sub, message.reason);
      }
    } else {
      const connections =
        target.to === 'all'
          ? this.everyone
          : target.to === 'room'
            ? this.rooms.get(target.room)
            : this.userChannels.connectionsOf(target.sub);
      this.deliver(connections, PushFrame.fromWire(message.frame), undefined);
    }
  }

  private publish(channel: string, message: ClusterMessage): void {
    this.metrics?.publishedOne();
    // A refusal is logged and counted by the broker; local members already have the message.
    this.broker.publish(channel, encodeClusterMessage(message)).then(undefined, ignoreRefusal);
  }

  private connection(client: object): Connection {
    const connection = connectionOf(client);
    if (!connection) {
      throw new TypeError('RealtimeHub: not a client of a realtime gateway (pass the socket from @ConnectedSocket())');
    }
    return connection;
  }
}

function ignoreRefusal(): void {}
