import type { ClientRoomOptions, IncomingFrame } from './client-options.js';
import { checkListener } from './client-events.js';
import { RealtimeClientError } from './client-error.js';

/** What the client tells after joining a room again on a new connection. */
export interface RoomRejoin {
  /** The room joined again. */
  readonly room: string;
  /**
   * Whether every message missed meanwhile came (they arrive as ordinary pushes, before
   * any newer one). False: some are gone, or the room's history was lost; reload the
   * room's state from the application.
   */
  readonly recovered: boolean;
  /** The server's reply to the join. */
  readonly reply: unknown;
}

/**
 * A rejoin the server could not answer (`UNAVAILABLE`) or did not answer in time (`TIMEOUT`)
 * is tried again after a pause that starts at {@link REJOIN_RETRY_MS} and doubles up to
 * {@link REJOIN_RETRY_MAX_MS}; past {@link REJOIN_RETRIES} tries the application is told,
 * once, and the tries go on at the longest pause while the connection lasts.
 */
const REJOIN_RETRIES = 6;
const REJOIN_RETRY_MS = 500;
const REJOIN_RETRY_MAX_MS = 8000;

interface Tracked {
  /** What its latest successful `join()` sent besides the room: a rejoin sends it again. */
  data: Readonly<Record<string, unknown>>;
  /** A join of it succeeded: only such rooms are joined again (a first join still queued goes out by itself). */
  confirmed?: boolean;
  offset?: number;
  epoch?: string;
  /** The highest offset seen since the last join was sent: its pushes can be handled before its reply. */
  seenSinceJoin?: number;
}

/** The rooms the client joined, and where each stands: the last offset seen and the epoch. */
export class RoomTracker {
  readonly joinEvent: string;
  readonly leaveEvent: string;
  readonly rejoin: boolean;
  private readonly rooms = new Map<string, Tracked>();
  private readonly listeners = new Set<(rejoin: RoomRejoin) => void>();
  /** Counts rejoin rounds: a retry of an older round stops. */
  private generation = 0;
  /** Timers of rejoins to try again. */
  private readonly retries = new Set<unknown>();

  constructor(options: ClientRoomOptions = {}) {
    this.joinEvent = options.joinEvent ?? 'join';
    this.leaveEvent = options.leaveEvent ?? 'leave';
    this.rejoin = options.rejoin ?? true;
  }

  /**
   * A join is about to be sent: offsets seen from now on count for it (a transport may hand
   * over the pushes that follow the reply before the reply's handler runs). Returns
   * whether the room is new here, so that a failed first join can forget it.
   */
  joining(room: string, data: Readonly<Record<string, unknown>>): boolean {
    let tracked = this.rooms.get(room);
    const fresh = tracked === undefined;
    if (!tracked) {
      tracked = { data };
      this.rooms.set(room, tracked);
    }
    tracked.seenSinceJoin = undefined;
    return fresh;
  }

  /** Joins through `send` and tracks the room; a first join that fails leaves it untracked. */
  async track<T>(room: string, data: Readonly<Record<string, unknown>>, send: () => Promise<T>): Promise<T> {
    const fresh = this.joining(room, data);
    const entry = this.rooms.get(room)!;
    try {
      const reply = await send();
      this.joined(room, entry, reply, data);
      return reply;
    } catch (error) {
      if (fresh && this.rooms.get(room) === entry) {
        this.left(room); // not if it was left and joined again meanwhile
      }
      throw error;
    }
  }

  /**
   * A join (of `data`) succeeded: the room goes on from the position its reply gives, unless `tracked`
   * is no longer the room's entry (false): the room was left meanwhile, and maybe joined
   * again, whose own reply then decides.
   */
  joined(room: string, tracked: Tracked, reply: unknown, data = tracked.data): boolean {
    if (this.rooms.get(room) !== tracked) {
      return false;
    }
    tracked.confirmed = true;
    tracked.data = data; // what the server took: a refused join() leaves the data that worked
    const position = positionOf(reply);
    if (position) {
      // A recovered join's replay follows the reply, and its offsets move this on; otherwise
      // the room goes on from where it stands now (or from what already came after it).
      const sent = tracked.epoch === undefined ? positionOf(data.since) : undefined;
      if (position.recovered === true && sent?.epoch === position.epoch) {
        // A first join with the application's own `since`: its replay, still to come, starts there.
        tracked.offset = Math.max(sent.offset, tracked.seenSinceJoin ?? 0);
      } else if (!(position.recovered === true && tracked.epoch === position.epoch)) {
        tracked.offset = Math.max(position.offset, tracked.seenSinceJoin ?? 0);
      }
      tracked.epoch = position.epoch;
    }
    return true;
  }

  /** The room was left. */
  left(room: string): void {
    this.rooms.delete(room);
  }

  /** A push: its offset moves its room's position on. */
  seen(frame: IncomingFrame): void {
    const offset = (frame as { offset?: unknown }).offset;
    if (typeof frame.room === 'string' && typeof offset === 'number') {
      const tracked = this.rooms.get(frame.room);
      if (tracked) {
        tracked.seenSinceJoin = Math.max(offset, tracked.seenSinceJoin ?? 0);
        if (tracked.offset === undefined || offset > tracked.offset) {
          tracked.offset = offset;
        }
      }
    }
  }

  /** Listens to rooms joined again; returns a function that stops listening. */
  onRejoin(listener: (rejoin: RoomRejoin) => void): () => void {
    checkListener('onRejoin', listener);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * On a new connection: joins every room joined before again through `io.request` (a room
   * whose first join still waits in the queue is left to it), with `since`
   * when its position is known, and tells the listeners. A join the server cannot answer
   * now (`UNAVAILABLE`: its history cannot be read) or did not answer in time (`TIMEOUT`;
   * joining again is harmless) is tried again after a while, a few times; other failures
   * go to `io.fail`. The room stays tracked either way.
   */
  async rejoinAll(io: RejoinIo): Promise<void> {
    if (this.rejoin) {
      const generation = ++this.generation;
      const joined = [...this.rooms].filter(([, tracked]) => tracked.confirmed);
      await Promise.all(joined.map(([room]) => this.rejoinOne(room, generation, 0, io)));
    }
  }

  /** Stops the rejoins still to be tried again (the client disconnects), with the clock's `clear`. */
  stop(clear: (timer: unknown) => void): void {
    this.generation++;
    this.retries.forEach(clear);
    this.retries.clear();
  }

  private async rejoinOne(room: string, generation: number, attempt: number, io: RejoinIo): Promise<void> {
    const tracked = this.rooms.get(room);
    if (!tracked || generation !== this.generation) {
      return; // left meanwhile, or a newer connection rejoins
    }
    const since =
      tracked.offset !== undefined && tracked.epoch !== undefined ? { offset: tracked.offset, epoch: tracked.epoch } : undefined;
    // Only this join's pushes count for it: those of the old connection may be of an epoch the reply no longer names.
    this.joining(room, tracked.data);
    try {
      const reply = await io.request(since ? { ...tracked.data, room, since } : { ...tracked.data, room });
      if (!this.joined(room, tracked, reply)) {
        return; // left while its rejoin was under way
      }
      const recovered = (reply as { recovered?: unknown } | null)?.recovered === true;
      this.listeners.forEach((listener) => io.guard(() => listener({ room, recovered, reply })));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if ((code === 'UNAVAILABLE' || code === 'TIMEOUT') && generation === this.generation) {
        if (attempt === REJOIN_RETRIES) {
          // Told once; the room's messages do not come until a try goes through, which onRejoin then says.
          const message = `room ${JSON.stringify(room)} could not be joined again yet (still trying): ${(error as Error).message}`;
          io.fail(new RealtimeClientError(code, message));
        }
        const timer = io.later(Math.min(REJOIN_RETRY_MS * 2 ** attempt, REJOIN_RETRY_MAX_MS), () => {
          this.retries.delete(timer);
          void this.rejoinOne(room, generation, attempt + 1, io);
        });
        this.retries.add(timer);
      } else {
        io.fail(error);
      }
    }
  }
}

/** What {@link RoomTracker.rejoinAll} works with: the client's request, error reporting, listener guard and clock. */
export interface RejoinIo {
  request(body: Record<string, unknown>): Promise<unknown>;
  fail(error: unknown): void;
  guard(call: () => void): void;
  /** Sets a timer; returns its handle. */
  later(ms: number, call: () => void): unknown;
}

/** The position in a join's reply (or in the `since` its data gave), and whether it recovered. */
function positionOf(reply: unknown): { offset: number; epoch: string; recovered?: unknown } | undefined {
  const candidate = reply as { offset?: unknown; epoch?: unknown; recovered?: unknown } | null;
  if (typeof candidate?.offset === 'number' && typeof candidate.epoch === 'string') {
    return { offset: candidate.offset, epoch: candidate.epoch, recovered: candidate.recovered };
  }
  return undefined;
}
