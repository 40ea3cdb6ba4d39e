import type { Logger } from '@nestjs/common';
import type { HistoryPage, HistoryPolicy, RealtimeBroker, StreamPosition } from '../broker/broker.interface.js';
import { messageOf } from '../broker/broker-errors.js';
import type { Connection } from '../gateway/connection.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { RealtimeError } from '../realtime.errors.js';
import { PushFrame } from '../transport/push-frame.js';
import { roomChannel } from './cluster-envelope.js';
import type { RoomPosition } from './room-options.js';
import { caughtUp, markAnswered, newRecovery, owed, type Recovery, whenAnswered } from './room-recovery.js';
import { DeliveryWaiters } from './delivery-waiters.js';
import { newStream, type RoomStream } from './room-stream.js';

/** How long a joined connection's replay waits for the join's reply at most. */
const RECOVERY_FALLBACK_MS = 5000;
/** Newer messages a room holds while a gap is being filled; beyond it, the gap is given up on. */
const MAX_HELD = 10_000;
/** Pause before a gap fill whose history read failed is tried again; it doubles with each failure, up to the most. */
const FILL_RETRY_MS = 1000;
const FILL_RETRY_MAX_MS = 10_000;

/** A room push as the stream hands it to the hub: its frame's wire form (without offset) and who not to send it to. */
export interface RoomPush {
  readonly frame: string;
  readonly except?: Connection;
}

/**
 * Room messages with offsets, in order, exactly once, on this instance. Each room with
 * local members has a stream that delivers what the broker hands over in offset order:
 * a duplicate is skipped, a gap (a message missed during a broker outage or stall) is
 * filled from history before anything newer, and an epoch change starts over. A joining
 * connection that asks to recover gets the messages it missed right after its join's
 * reply, before any newer message of that room.
 */
export class RoomStreams {
  private readonly streams = new Map<string, RoomStream>();
  private readonly waiters = new DeliveryWaiters();

  constructor(
    private readonly broker: RealtimeBroker,
    private readonly policy: HistoryPolicy,
    /** Per-room lines that an outage repeats for every room go to `debug`; the broker reports the outage itself. */
    private readonly logger: Pick<Logger, 'warn' | 'debug'>,
    /** The push of a broker payload; undefined when it is not a room message. `live`: not a replay (a sender's exclusion is used up). */
    private readonly decode: (payload: string, live: boolean) => RoomPush | undefined,
    /** The local members of a room. */
    private readonly members: (room: string) => Iterable<Connection> | undefined,
    /** Counts pushes sent. */
    private readonly pushed: (count: number) => void,
  ) {}

  /** Opens the room's stream (its first local member joins). */
  open(room: string): void {
    if (!this.streams.has(room)) {
      this.streams.set(room, newStream());
    }
  }

  /** Closes the room's stream (its last local member left). */
  close(room: string): void {
    const stream = this.streams.get(room);
    clearTimeout(stream?.retry);
    stream?.recovering.forEach(markAnswered);
    this.streams.delete(room);
    this.waiters.closed(room);
  }

  /** Resolves once this instance's members of `room` got its message at `position`, at most after `maxMs` (see {@link DeliveryWaiters}). */
  delivered(room: string, position: StreamPosition, maxMs: number): Promise<void> | undefined {
    const stream = this.streams.get(room);
    return stream && this.waiters.wait(room, position, maxMs, stream.epoch, stream.offset);
  }

  /** A room message from the broker, with its position. */
  receive(room: string, payload: string, position: StreamPosition): void {
    const stream = this.streams.get(room);
    if (!stream) {
      return; // no local member any more
    }
    if (stream.filling || stream.retry) {
      stream.held.push([payload, position]);
      return;
    }
    this.accept(room, stream, payload, position);
  }

  /** After a broker outage or stall: every room catches up from history. */
  catchUp(): void {
    for (const [room, stream] of this.streams) {
      if (stream.epoch !== undefined) {
        void this.fill(room, stream);
      }
    }
  }

  /**
   * A connection is joining `room`: the room's pushes wait for it from now on, until its
   * join's reply is out ({@link recover} says what it is owed). Called as it becomes a
   * member, before anything is awaited, so that no push reaches it ahead of the reply.
   */
  hold(room: string, connection: Connection): Recovery | undefined {
    const recovering = this.streams.get(room)?.recovering;
    const recovery = newRecovery();
    markAnswered(recovering?.get(connection)); // replaced
    recovering?.set(connection, recovery);
    return recovering && recovery;
  }

  /** Resolves once the join of `connection` still working out its answer has it, or is dropped; undefined when none is. */
  answered(room: string, connection: Connection): Promise<void> | undefined {
    const recovery = this.streams.get(room)?.recovering.get(connection);
    if (recovery === undefined || recovery.until !== undefined) {
      return undefined;
    }
    return whenAnswered(recovery);
  }

  /** Whether `connection` is joining `room` and its join's reply is not out yet: the room's pushes wait for it. */
  replyPending(room: string, connection: Connection): boolean {
    const recovery = this.streams.get(room)?.recovering.get(connection);
    return recovery !== undefined && !recovery.flushed;
  }

  /**
   * A connection just joined `room` (its subscription is in place): reads the room's
   * position, and with `since` the messages after it. Recovered messages, and newer ones
   * that arrive meanwhile, go out right after the join's reply. Without the broker, the
   * position is what this instance knows; a join with `since` then fails with
   * `UNAVAILABLE` (whether it could recover cannot be told), to be tried again.
   */
  async recover(
    room: string,
    connection: Connection,
    since: StreamPosition | undefined,
    held?: Recovery,
  ): Promise<RoomPosition | undefined> {
    const stream = this.streams.get(room);
    const current = stream?.recovering.get(connection);
    if (!stream || (held !== undefined && current !== held)) {
      return this.position(room); // left and joined again meanwhile: that newer join recovers
    }
    const recovery = current ?? newRecovery();
    recovery.from = stream.epoch; // as the history read starts: the stream may move on to a new epoch before it answers
    stream.recovering.set(connection, recovery);
    try {
      return await this.answer(room, stream, connection, recovery, since);
    } finally {
      markAnswered(recovery);
    }
  }

  private async answer(
    room: string,
    stream: RoomStream,
    connection: Connection,
    recovery: Recovery,
    since: StreamPosition | undefined,
  ): Promise<RoomPosition | undefined> {
    let page: HistoryPage | undefined;
    try {
      page = await this.broker.history(roomChannel(room), since, this.policy);
    } catch {
      // Told to the client (UNAVAILABLE with since) or answered from what this instance knows.
    }
    if (!page && since !== undefined) {
      // Whether the missed messages are still there cannot be told now: not a "no".
      stream.recovering.delete(connection);
      throw new RealtimeError(ErrorCode.UNAVAILABLE, 'the room history cannot be read now; join again shortly');
    }
    if (stream.epoch === undefined && page) {
      stream.epoch = page.position.epoch;
      stream.offset = page.position.offset;
      this.waiters.reached(room, stream.epoch, stream.offset); // what came before the room's first join here is nobody's here
    }
    const position = page?.position ?? (stream.epoch === undefined ? undefined : { offset: stream.offset, epoch: stream.epoch });
    recovery.until = position?.offset ?? 0;
    recovery.epoch = position?.epoch;
    const recovered = since === undefined ? undefined : page?.complete === true;
    const replay = recovered ? page!.entries : [];
    const flush = (): void => this.flushRecovery(stream, connection, recovery, replay);
    connection.afterReply(flush);
    // Should no reply come (a join made outside a handler while a request hangs), it goes anyway.
    setTimeout(flush, RECOVERY_FALLBACK_MS).unref();
    if (!position) {
      return undefined;
    }
    return recovered === undefined ? position : { ...position, recovered };
  }

  /** Sends a joined connection what it recovered, then what came meanwhile; from then on it gets pushes as every member does. */
  private flushRecovery(
    stream: RoomStream,
    connection: Connection,
    recovery: Recovery,
    replay: readonly { offset: number; payload: string }[],
  ): void {
    if (recovery.flushed || stream.recovering.get(connection) !== recovery) {
      return; // sent already, or left the room (or joined again) meanwhile
    }
    let sent = 0;
    for (const entry of replay) {
      const push = this.decode(entry.payload, false);
      if (push && connection.sendPush(PushFrame.fromWire(push.frame, entry.offset))) {
        sent++;
      }
    }
    for (const [offset, frame, epoch] of recovery.held) {
      if (owed(recovery, epoch, offset) && connection.sendPush(frame)) {
        sent++;
      }
    }
    recovery.held.length = 0;
    recovery.flushed = true;
    if (caughtUp(recovery, stream.epoch, stream.offset)) {
      stream.recovering.delete(connection);
    }
    this.pushed(sent);
  }

  /** Where the room stands on this instance, when that is known. */
  position(room: string): RoomPosition | undefined {
    const stream = this.streams.get(room);
    return stream?.epoch === undefined ? undefined : { offset: stream.offset, epoch: stream.epoch };
  }

  /**
   * Where the room stands for a connection already in it, joining again: nothing is
   * replayed (it gets every message as it comes), so a join with `since` is answered
   * `recovered: false` (protocol §7: the client reloads rather than assume).
   */
  memberPosition(room: string, since: StreamPosition | undefined): RoomPosition | undefined {
    const position = this.position(room);
    return position && since !== undefined ? { ...position, recovered: false } : position;
  }

  /** Forgets a connection's recovery (it left the room or closed). */
  forget(room: string, connection: Connection): void {
    const recovering = this.streams.get(room)?.recovering;
    markAnswered(recovering?.get(connection));
    recovering?.delete(connection);
  }

  private accept(room: string, stream: RoomStream, payload: string, position: StreamPosition): void {
    if (stream.epoch !== position.epoch) {
      if (stream.epoch === undefined) {
        stream.offset = position.offset - 1; // the first message seen here: nothing before it is owed
      } else {
        this.logger.debug(`room ${room}: its history was lost (new epoch), offsets start over`);
        stream.offset = 0; // the new epoch from its start: what came before this one is read from history
      }
      stream.epoch = position.epoch;
    }
    if (position.offset <= stream.offset) {
      this.waiters.reached(room, position.epoch, stream.offset); // its publisher need not wait for it
      return; // delivered already (filled from history, say)
    }
    if (position.offset > stream.offset + 1) {
      stream.held.push([payload, position]);
      void this.fill(room, stream);
      return;
    }
    stream.offset = position.offset;
    this.emit(room, stream, payload, position.offset);
  }

  /**
   * Reads what this instance missed of a room from history and delivers it, then what
   * waited. A gap history no longer covers is jumped over; one that could not be read (the
   * broker is away) is read again later (1, 2, 4 … 10 s), while newer messages wait, up to a bound.
   */
  private async fill(room: string, stream: RoomStream): Promise<void> {
    if (stream.filling) {
      return;
    }
    clearTimeout(stream.retry);
    stream.retry = undefined;
    stream.filling = true;
    let failed = false;
    try {
      // A second read when the first finds a new epoch: that epoch from its start.
      for (let read = 0; read < 2; read++) {
        const page = await this.broker.history(roomChannel(room), { offset: stream.offset, epoch: stream.epoch! }, this.policy);
        if (this.streams.get(room) !== stream) {
          return; // the room emptied (and maybe filled again) meanwhile: not this stream's members any more
        }
        if (page.complete) {
          for (const entry of page.entries) {
            if (entry.offset === stream.offset + 1) {
              stream.offset = entry.offset;
              this.emit(room, stream, entry.payload, entry.offset);
            }
          }
          break;
        }
        if (page.position.epoch !== stream.epoch) {
          this.logger.debug(`room ${room}: its history was lost (new epoch), offsets start over`);
          stream.epoch = page.position.epoch;
          stream.offset = 0;
          continue;
        }
        if (page.position.offset > stream.offset) {
          this.logger.warn(`room ${room}: messages after offset ${stream.offset} are no longer in history; members get a gap`);
        }
        break;
      }
    } catch (error) {
      failed = true;
      this.logger.debug(`room ${room}: a gap could not be filled yet: ${messageOf(error)}`);
    } finally {
      stream.filling = false;
    }
    if (this.streams.get(room) !== stream) {
      return;
    }
    stream.failures = failed ? stream.failures + 1 : 0;
    if (failed && stream.held.length <= MAX_HELD) {
      stream.retry = setTimeout(
        () => {
          stream.retry = undefined;
          if (this.streams.get(room) === stream) {
            void this.fill(room, stream);
          }
        },
        Math.min(FILL_RETRY_MS * 2 ** (stream.failures - 1), FILL_RETRY_MAX_MS),
      );
      stream.retry.unref();
      return;
    }
    // What waited, in order (of the current epoch only); a gap history does not cover is jumped over.
    const held = stream.held
      .splice(0)
      .filter(([, position]) => position.epoch === stream.epoch || position.offset === 1)
      .sort((a, b) => a[1].offset - b[1].offset);
    for (const [payload, position] of held) {
      if (stream.filling) {
        stream.held.push([payload, position]); // a new fill started: it takes the rest
        continue;
      }
      if (position.epoch === stream.epoch && position.offset > stream.offset + 1) {
        stream.offset = position.offset - 1;
      }
      this.accept(room, stream, payload, position);
    }
  }

  private emit(room: string, stream: RoomStream, payload: string, offset: number): void {
    this.waiters.reached(room, stream.epoch!, offset); // its publisher goes on once the pushes below are written
    const push = this.decode(payload, true);
    const members = this.members(room);
    if (!push || !members) {
      return;
    }
    // Encoded and framed once per encoding, with its offset: the same bytes for every recipient of each.
    const frame = PushFrame.fromWire(push.frame, offset);
    let sent = 0;
    const recovering = stream.recovering;
    for (const connection of members) {
      if (connection === push.except) {
        continue;
      }
      const recovery = recovering.size === 0 ? undefined : recovering.get(connection);
      if (recovery) {
        sent += this.offer(stream, connection, recovery, offset, frame) ? 1 : 0;
      } else if (connection.sendPush(frame)) {
        sent++;
      }
    }
    this.pushed(sent);
  }

  /** A push for a connection that is catching up: skipped when its replay has it, held until the replay is out, else sent. */
  private offer(stream: RoomStream, connection: Connection, recovery: Recovery, offset: number, frame: PushFrame): boolean {
    if (recovery.until === undefined || !recovery.flushed) {
      recovery.held.push([offset, frame, stream.epoch]);
      return false;
    }
    const send = owed(recovery, stream.epoch, offset);
    if (caughtUp(recovery, stream.epoch, stream.offset)) {
      stream.recovering.delete(connection);
    }
    return send && connection.sendPush(frame);
  }
}
