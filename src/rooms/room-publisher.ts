import type { HistoryPolicy, RealtimeBroker, StreamPosition } from '../broker/broker.interface.js';
import type { Connection } from '../gateway/connection.js';
import type { RealtimeMetrics } from '../metrics/realtime-metrics.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { RealtimeError } from '../realtime.errors.js';
import { decodeClusterMessage, encodeClusterMessage, roomChannel } from './cluster-envelope.js';
import type { RoomPush } from './room-streams.js';
import type { PushFrame } from '../transport/push-frame.js';

/** Sender exclusions of publishes still on their way back from the broker; beyond it, the oldest are forgotten. */
const MAX_EXCEPT_TICKETS = 10_000;

/** What a {@link RoomPublisher} needs of the hub. */
export interface RoomPublisherHost {
  /** The local members of a room. */
  members(room: string): ReadonlySet<Connection> | undefined;
  /** Sends a push to a room's local members at once (without history, once the broker took it). */
  deliver(room: string, push: PushFrame, except: Connection | undefined): void;
  /** With history: resolves once the room's local members got the message at `position`; undefined when they have. */
  delivered(room: string, position: StreamPosition): Promise<void> | undefined;
}

/**
 * Room messages on their way out. With history, the broker gives each its offset and
 * every instance, this one included, delivers it when it comes back, in offset order;
 * the sender to leave out travels as a ticket only this instance can redeem. Without
 * history, local members get it once the broker took it, which carries it to the others.
 */
export class RoomPublisher {
  /**
   * ticket → the sender a room publish of this instance must skip, until it comes back from
   * the broker. Held weakly: a publish whose echo never comes (the room's subscription
   * was dropped or never confirmed) must not keep a closed connection, its socket and its
   * buffers alive until the ticket is pushed out.
   */
  private readonly exceptTickets = new Map<number, WeakRef<Connection>>();
  private nextTicket = 0;

  constructor(
    private readonly broker: RealtimeBroker,
    private readonly instanceId: string,
    private readonly history: HistoryPolicy | undefined,
    private readonly metrics: RealtimeMetrics | undefined,
    private readonly host: RoomPublisherHost,
  ) {}

  /** Publishes a room push; resolves with its offset (undefined without history), rejects with `UNAVAILABLE`. */
  emit(room: string, push: PushFrame, except: Connection | undefined): Promise<number | undefined> {
    return this.history ? this.publishWithHistory(room, push.wire, except, this.history) : this.publishWithoutHistory(room, push, except);
  }

  /** The push of a room message from the broker; the sender's exclusion is used once, by the live copy (`live`). */
  push(payload: string, live = true): RoomPush | undefined {
    const message = decodeClusterMessage(payload);
    if (message?.type !== 'message') {
      return undefined;
    }
    let except: Connection | undefined;
    if (live && message.except !== undefined && message.origin === this.instanceId) {
      except = this.exceptTickets.get(message.except)?.deref();
      this.exceptTickets.delete(message.except);
    }
    return { frame: message.frame, except };
  }

  private async publishWithHistory(
    room: string,
    frame: string,
    except: Connection | undefined,
    history: HistoryPolicy,
  ): Promise<number | undefined> {
    let ticket: number | undefined;
    if (except && this.host.members(room)?.has(except)) {
      ticket = ++this.nextTicket;
      this.exceptTickets.set(ticket, new WeakRef(except));
      if (this.exceptTickets.size > MAX_EXCEPT_TICKETS) {
        this.exceptTickets.delete(this.exceptTickets.keys().next().value!);
      }
    }
    this.metrics?.publishedOne();
    const payload = encodeClusterMessage({ type: 'message', origin: this.instanceId, frame, except: ticket });
    let position: StreamPosition | undefined;
    try {
      position = await this.broker.publish(roomChannel(room), payload, history);
    } catch {
      if (ticket !== undefined) {
        this.exceptTickets.delete(ticket);
      }
      throw unavailable();
    }
    // The sender's own copy first: a reply sent once this resolves follows it. Nothing to
    // wait for, no extra turn (the in-memory broker delivers before it answers).
    const delivering = position && this.host.delivered(room, position);
    if (delivering) {
      await delivering;
    }
    return position?.offset;
  }

  private async publishWithoutHistory(room: string, push: PushFrame, except: Connection | undefined): Promise<undefined> {
    this.metrics?.publishedOne();
    const payload = encodeClusterMessage({ type: 'message', origin: this.instanceId, frame: push.wire });
    await this.broker.publish(roomChannel(room), payload).catch(() => {
      throw unavailable();
    });
    // Once the broker took it: a message it refuses reaches no member, so its sender may send it again.
    this.host.deliver(room, push, except);
    return undefined;
  }
}

/** What a sender gets when the broker could not take a room message (the broker logs why). */
function unavailable(): RealtimeError {
  return new RealtimeError(ErrorCode.UNAVAILABLE, 'the message could not be sent now; try again');
}
