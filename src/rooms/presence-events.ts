import type { Logger } from '@nestjs/common';
import type { RealtimeBroker } from '../broker/broker.interface.js';
import type { Connection } from '../gateway/connection.js';
import type { RealtimeMetrics } from '../metrics/realtime-metrics.js';
import { prebuildTextFrame } from '../transport/prebuilt-frame.js';
import type { RealtimePresenceOptions } from './presence-options.js';
import { type ClusterTarget, encodeClusterMessage, roomChannel } from './cluster-envelope.js';

/** Presence event settings with their defaults applied. */
export interface PresenceEventSettings {
  readonly debounceMs: number;
  readonly resyncMs: number;
}

/** What presence events need of the hub: the rooms' local members, and who is still joining. */
export interface PresenceEventsHost {
  readonly rooms: ReadonlyMap<string, ReadonlySet<Connection>>;
  /** Room history, which knows who is joining (undefined when history is off). */
  readonly streams: { replyPending(room: string, connection: Connection): boolean } | undefined;
  readonly metrics: RealtimeMetrics | undefined;
}

/** The event of presence pushes. */
export const PRESENCE_EVENT = 'presence';

/** `presence` with its defaults applied; undefined when events are off. */
export function resolvePresenceEvents(options: RealtimePresenceOptions | undefined): PresenceEventSettings | undefined {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new TypeError(`Realtime option presence must be an object, got ${JSON.stringify(options)}`);
  }
  if (!options?.events) {
    return undefined;
  }
  const settings = { debounceMs: options.debounceMs ?? 1000, resyncMs: options.resyncMs ?? 15_000 };
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isSafeInteger(value) || value < (name === 'debounceMs' ? 0 : 1)) {
      throw new TypeError(`Realtime option presence.${name} must be a whole number of ms, got ${JSON.stringify(value)}`);
    }
  }
  return Object.freeze(settings);
}

/**
 * Presence events (protocol §9). Each instance tells its own members of a room, so no
 * event crosses the broker: when presence may have changed (a local user's first
 * connection joined or last one left, or another instance said one of its users did), the
 * instance reads the room's presence once the change has settled, compares it with what
 * it last told, and pushes the difference. Every instance reads the same presence, so
 * members everywhere get the same events, once per user and not per connection.
 */
export class PresenceEvents {
  /** Rooms with local members → the users last told to them; undefined until the first read. */
  private readonly told = new Map<string, Set<string> | undefined>();
  /** Rooms whose presence is due to be compared. */
  private readonly due = new Map<string, NodeJS.Timeout>();
  /** Per room, the latest read started: an older read that answers later is not applied. */
  private readonly reads = new Map<string, number>();
  private readCount = 0;
  /** The broker was not answering at the last compare (said once in the log). */
  private paused = false;
  private readonly resync: NodeJS.Timeout;

  /** The presence events `options` ask for; undefined when they are off. */
  static from(
    options: RealtimePresenceOptions | undefined,
    broker: RealtimeBroker,
    instanceId: string,
    logger: Pick<Logger, 'warn'>,
    host: PresenceEventsHost,
  ): PresenceEvents | undefined {
    const settings = resolvePresenceEvents(options);
    return settings && new PresenceEvents(broker, instanceId, settings, host, logger);
  }

  constructor(
    private readonly broker: RealtimeBroker,
    private readonly instanceId: string,
    private readonly settings: PresenceEventSettings,
    private readonly host: PresenceEventsHost,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {
    this.resync = setInterval(() => this.told.forEach((_, room) => this.schedule(room)), settings.resyncMs);
    this.resync.unref();
  }

  /**
   * A room got its first local member, `joiner` (undefined without a user): the room's
   * presence, read now and counting the joiner in, is where its events start from. The
   * joiner's join reply lists who is there; whoever joins after this read is told.
   */
  opened(room: string, joiner: string | undefined): void {
    this.told.set(room, undefined);
    void this.compare(room, joiner);
  }

  /** A room lost its last local member: nobody here to tell. */
  closed(room: string): void {
    this.told.delete(room);
    this.reads.delete(room);
    clearTimeout(this.due.get(room));
    this.due.delete(room);
  }

  /**
   * A local user's first connection in `room` joined, or their last one left, and the
   * broker knows it: other instances are told to compare too.
   */
  changedHere(room: string): void {
    this.broker.publish(roomChannel(room), encodeClusterMessage({ type: 'presence', origin: this.instanceId })).catch(() => {
      // Unreachable broker: the other instances compare at their next resync.
    });
    this.schedule(room);
  }

  /** Another instance said a room's presence changed (on the room's channel). */
  changedElsewhere(target: ClusterTarget): void {
    if (target.to === 'room') {
      this.schedule(target.room);
    }
  }

  /** Stops the timers (the application shuts down). */
  stop(): void {
    clearInterval(this.resync);
    this.due.forEach((timer) => clearTimeout(timer));
    this.due.clear();
  }

  private schedule(room: string): void {
    if (!this.told.has(room) || this.due.has(room)) {
      return;
    }
    const timer = setTimeout(() => {
      this.due.delete(room);
      void this.compare(room);
    }, this.settings.debounceMs);
    timer.unref();
    this.due.set(room, timer);
  }

  private async compare(room: string, joiner?: string): Promise<void> {
    // A broker that is not answering reports this instance's own members only: compared with
    // that, every other instance's users would seem to leave. Such reads are not used; the
    // next change or resync after the broker is back compares again.
    if (!this.brokerAnswers()) {
      return;
    }
    const read = ++this.readCount;
    this.reads.set(room, read);
    let present: string[];
    try {
      present = await this.broker.presence(room);
    } catch (error) {
      this.logger.warn(`presence of ${room} could not be read for its events: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (!this.brokerAnswers() || this.reads.get(room) !== read || !this.told.has(room)) {
      return; // the broker failed meanwhile, a newer read was started, or the room's last local member left
    }
    const before = this.told.get(room);
    const now = new Set(present);
    this.told.set(room, now);
    if (!before) {
      if (joiner !== undefined) {
        now.add(joiner); // its own presence may not be written yet: no event about itself
      }
      return;
    }
    for (const sub of [...before].filter((user) => !now.has(user)).sort()) {
      this.deliver(room, JSON.stringify({ event: PRESENCE_EVENT, room, data: { left: sub } }));
    }
    for (const sub of [...now].filter((user) => !before.has(user)).sort()) {
      this.deliver(room, JSON.stringify({ event: PRESENCE_EVENT, room, data: { joined: sub } }));
    }
  }

  /** Whether the broker answers; the first time it does not, says so once, until it does again. */
  private brokerAnswers(): boolean {
    const { status } = this.broker.health();
    if (status === 'ok') {
      this.paused = false;
      return true;
    }
    if (!this.paused) {
      this.paused = true;
      this.logger.warn(`presence events wait for the broker (${status}): its presence cannot be read now`);
    }
    return false;
  }

  /** Pushes a frame to the room's local members; one still joining gets it after its join's reply. */
  private deliver(room: string, frame: string): void {
    const prebuilt = prebuildTextFrame(frame);
    let sent = 0;
    for (const connection of this.host.rooms.get(room) ?? []) {
      if (this.host.streams?.replyPending(room, connection)) {
        connection.afterReply(() => connection.send(frame));
      } else if (connection.sendPrebuilt(prebuilt)) {
        sent++;
      }
    }
    this.host.metrics?.pushed(sent);
  }
}
