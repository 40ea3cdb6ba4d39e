import type { ClientRoomOptions, IncomingFrame } from './client-options.js';

/** What the client tells after joining a room again on a new connection. */
export interface RoomRejoin {
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

interface Tracked {
  readonly data: Readonly<Record<string, unknown>>;
  offset?: number;
  epoch?: string;
}

/** The rooms the client joined, and where each stands: the last offset seen and the epoch. */
export class RoomTracker {
  readonly joinEvent: string;
  readonly leaveEvent: string;
  readonly rejoin: boolean;
  private readonly rooms = new Map<string, Tracked>();
  private readonly listeners = new Set<(rejoin: RoomRejoin) => void>();

  constructor(options: ClientRoomOptions = {}) {
    this.joinEvent = options.joinEvent ?? 'join';
    this.leaveEvent = options.leaveEvent ?? 'leave';
    this.rejoin = options.rejoin ?? true;
  }

  /** A join succeeded: the room is tracked from the position its reply gives. */
  joined(room: string, data: Readonly<Record<string, unknown>>, reply: unknown): void {
    const tracked: Tracked = this.rooms.get(room) ?? { data };
    const position = positionOf(reply);
    if (position) {
      // A recovered join's replay follows the reply, and its offsets move this on; otherwise
      // the room starts from where it stands now.
      if (!(position.recovered === true && tracked.epoch === position.epoch)) {
        tracked.offset = position.offset;
      }
      tracked.epoch = position.epoch;
    }
    this.rooms.set(room, tracked);
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
      if (tracked && (tracked.offset === undefined || offset > tracked.offset)) {
        tracked.offset = offset;
      }
    }
  }

  /** Listens to rooms joined again; returns a function that stops listening. */
  onRejoin(listener: (rejoin: RoomRejoin) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * On a new connection: joins every tracked room again through `request`, with `since`
   * when its position is known, and tells the listeners (each call through `guard`).
   * A failed join goes to `fail`; the room stays tracked.
   */
  async rejoinAll(
    request: (body: Record<string, unknown>) => Promise<unknown>,
    fail: (error: unknown) => void,
    guard: (call: () => void) => void,
  ): Promise<void> {
    if (!this.rejoin) {
      return;
    }
    await Promise.all(
      [...this.rooms].map(async ([room, tracked]) => {
        const since =
          tracked.offset !== undefined && tracked.epoch !== undefined ? { offset: tracked.offset, epoch: tracked.epoch } : undefined;
        try {
          const reply = await request(since ? { ...tracked.data, room, since } : { ...tracked.data, room });
          this.joined(room, tracked.data, reply);
          const recovered = (reply as { recovered?: unknown } | null)?.recovered === true;
          this.listeners.forEach((listener) => guard(() => listener({ room, recovered, reply })));
        } catch (error) {
          fail(error);
        }
      }),
    );
  }
}

/** The position in a join's reply, and whether it recovered. */
function positionOf(reply: unknown): { offset: number; epoch: string; recovered?: unknown } | undefined {
  const candidate = reply as { offset?: unknown; epoch?: unknown; recovered?: unknown } | null;
  if (typeof candidate?.offset === 'number' && typeof candidate.epoch === 'string') {
    return { offset: candidate.offset, epoch: candidate.epoch, recovered: candidate.recovered };
  }
  return undefined;
}
