import type { Logger } from '@nestjs/common';
import type { RealtimeBroker } from '../broker/broker.interface.js';
import { messageOf } from '../broker/broker-errors.js';
import type { Connection } from '../gateway/connection.js';
import type { RealtimeMetrics } from '../metrics/realtime-metrics.js';
import { PushFrame } from '../transport/push-frame.js';
import type { RealtimePresenceOptions } from './presence-options.js';
import { PRESENCE_EVENT } from '../protocol/envelope.js';
import { type ClusterTarget, encodeClusterMessage, roomChannel } from './cluster-envelope.js';
import { MAX_TIMER_MS } from '../limits/deadline.js';

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

/** The option names `presence` takes. */
const PRESENCE_KEYS: ReadonlySet<string> = new Set(['events', 'debounceMs', 'resyncMs']);

/** `presence` with its defaults applied; undefined when events are off. A bad value is a clear error at startup. */
export function resolvePresenceEvents(options: RealtimePresenceOptions | undefined): PresenceEventSettings | undefined {
  if (options === undefined) {
    return undefined;
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Realtime option presence must be an object, got ${JSON.stringify(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!PRESENCE_KEYS.has(key)) {
      throw new TypeError(`Realtime option presence has no "${key}" (it takes ${[...PRESENCE_KEYS].join(', ')})`);
    }
  }
  if (options.events !== undefined && typeof options.events !== 'boolean') {
    throw new TypeError(`Realtime option presence.events must be true or false, got ${JSON.stringify(options.events)}`);
  }
  const settings = { debounceMs: options.debounceMs ?? 1000, resyncMs: options.resyncMs ?? 15_000 };
  for (const [name, value, min] of [
    ['debounceMs', settings.debounceMs, 0],
    ['resyncMs', settings.resyncMs, 100],
  ] as const) {
    // Timers wait for both: Node fires one longer than MAX_TIMER_MS after 1 ms.
    if (!Number.isSafeInteger(value) || value < min || value > MAX_TIMER_MS) {
      throw new TypeError(
        `Realtime option presence.${name} must be a whole number of ms, at least ${min} and at most ${MAX_TIMER_MS}, got ${JSON.stringify(value)}`,
      );
    }
  }
  return options.events ? Object.freeze(settings) : undefined;
}

/**
 * Presence events (protocol §9). Each instance tells its own members of a room, so no
 * event crosses the broker: when presence may have changed (a local user's first
 * connection joined or last one left, or another instance said one of its users did), the
 * instance reads the room's presence once the change has settled, compares it with what
 * it last told, and pushes the difference: a newcomer at once, a user gone only once they
 * have stayed gone for `debounceMs` (a reconnection causes no event). Every instance reads
 * the same presence, so members everywhere get the same events, once per user and not per
 * connection.
 */
export class PresenceEvents {
  /** Rooms with local members → the users last told to them; undefined until the first read. */
  private readonly told = new Map<string, Set<string> | undefined>();
  /** Per room, users told as present whom a read found gone, and since when (not told yet). */
  private readonly gone = new Map<string, Map<string, number>>();
  /** Rooms whose notice to the other instances went out within the last `debounceMs`, and whether another is due. */
  private readonly notices = new Map<string, { again: boolean }>();
  /** Rooms whose presence is due to be compared, and when (`performance.now()`). */
  private readonly due = new Map<string, { timer: NodeJS.Timeout; at: number }>();
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
    // Spread over the interval: the rooms' reads do not all reach the broker at once.
    this.resync = setInterval(
      () => this.told.forEach((_, room) => this.schedule(room, Math.floor(Math.random() * settings.resyncMs))),
      settings.resyncMs,
    );
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
    // Once more after the room's channel is surely subscribed: a notice sent before is not lost.
    this.schedule(room);
  }

  /** A room lost its last local member: nobody here to tell. */
  closed(room: string): void {
    this.told.delete(room);
    this.gone.delete(room);
    this.reads.delete(room);
    clearTimeout(this.due.get(room)?.timer);
    this.due.delete(room);
  }

  /**
   * A local user's first connection in `room` joined, or their last one left, and the
   * broker knows it: other instances are told to compare too.
   */
  changedHere(room: string): void {
    this.notify(room);
    this.schedule(room);
  }

  /** Who this instance's members of `room` were told is there and not yet told as leaving; undefined before its first read. */
  toldOf(room: string): ReadonlySet<string> | undefined {
    return this.told.get(room);
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
    this.due.forEach(({ timer }) => clearTimeout(timer));
    this.due.clear();
    this.notices.clear();
  }

  /**
   * Tells the other instances that the room's presence changed: at most one notice per room
   * per `debounceMs`, plus one at the end of it if more changes came (they compare once the
   * changes have settled anyway). None while the broker does not answer: the notice would
   * only crowd its bounded queue, and the other instances compare at their next resync.
   */
  private notify(room: string): void {
    const window = this.notices.get(room);
    if (window) {
      window.again = true;
      return;
    }
    if (this.broker.health().status === 'ok') {
      this.broker.publish(roomChannel(room), encodeClusterMessage({ type: 'presence', origin: this.instanceId })).catch(() => {
        // Refused after all: the other instances compare at their next resync.
      });
    }
    const opened = { again: false };
    this.notices.set(room, opened);
    setTimeout(() => {
      this.notices.delete(room);
      if (opened.again) {
        this.notify(room);
      }
    }, this.settings.debounceMs).unref();
  }

  /** Compares the room's presence in `delayMs`, unless a compare is due sooner (a later one is brought forward). */
  private schedule(room: string, delayMs = this.settings.debounceMs): void {
    if (!this.told.has(room)) {
      return;
    }
    const at = performance.now() + delayMs;
    const pending = this.due.get(room);
    if (pending) {
      if (pending.at <= at) {
        return;
      }
      clearTimeout(pending.timer); // a resync's spread-out compare: this change comes sooner
    }
    const timer = setTimeout(() => {
      this.due.delete(room);
      void this.compare(room);
    }, delayMs);
    timer.unref();
    this.due.set(room, { timer, at });
  }

  private async compare(room: string, joiner?: string): Promise<void> {
    // A broker that is not answering reports this instance's own members only: compared with
    // that, every other instance's users would seem to leave. Such reads are not used; the
    // next change or resync after the broker is back compares again.
    if (!this.brokerAnswers()) {
      return this.startFromHere(room, joiner);
    }
    const read = ++this.readCount;
    this.reads.set(room, read);
    let present: string[];
    try {
      // Strict: a broker that cannot tell rejects rather than answer with this instance's members.
      present = await this.broker.presence(room, { strict: true });
    } catch (error) {
      this.pause(messageOf(error));
      return this.startFromHere(room, joiner);
    }
    if (!this.brokerAnswers() || this.reads.get(room) !== read || !this.told.has(room)) {
      return; // the broker failed meanwhile, a newer read was started, or the room's last local member left
    }
    this.paused = false;
    const told = this.told.get(room);
    const now = new Set(present);
    if (!told) {
      if (joiner !== undefined) {
        now.add(joiner); // its own presence may not be written yet: no event about itself
      }
      this.told.set(room, now);
      return;
    }
    this.tell(room, told, now);
  }

  /**
   * The room's first read could not be made: its members could only be shown this
   * instance's users (the broker's fallback), so the events start from those, and the next
   * read that works tells the users of the other instances as joining.
   */
  private startFromHere(room: string, joiner: string | undefined): void {
    if (this.told.has(room) && this.told.get(room) === undefined) {
      const here = new Set(
        [...(this.host.rooms.get(room) ?? [])].map((connection) => connection.user).filter((user) => user !== undefined),
      );
      this.told.set(room, joiner === undefined ? here : here.add(joiner));
    }
  }

  /** Pushes who joined (at once) and who left (once gone for `debounceMs`); keeps `told` up to date. */
  private tell(room: string, told: Set<string>, now: Set<string>): void {
    const at = performance.now();
    let gone = this.gone.get(room);
    let wait = Number.POSITIVE_INFINITY;
    for (const sub of [...told].sort()) {
      if (now.has(sub)) {
        gone?.delete(sub); // back within the grace: nothing to tell
        continue;
      }
      if (!gone) {
        this.gone.set(room, (gone = new Map()));
      }
      const since = gone.get(sub) ?? at;
      gone.set(sub, since);
      const left = at - since >= this.settings.debounceMs;
      if (left) {
        told.delete(sub);
        gone.delete(sub);
        this.deliver(room, PushFrame.of({ event: PRESENCE_EVENT, room, data: { left: sub } }));
      } else {
        wait = Math.min(wait, since + this.settings.debounceMs - at);
      }
    }
    for (const sub of [...now].sort()) {
      if (!told.has(sub)) {
        told.add(sub);
        this.deliver(room, PushFrame.of({ event: PRESENCE_EVENT, room, data: { joined: sub } }));
      }
    }
    if (gone?.size === 0) {
      this.gone.delete(room);
    }
    if (wait !== Number.POSITIVE_INFINITY) {
      this.schedule(room, Math.ceil(wait)); // whether they are still gone then
    }
  }

  /** Whether the broker answers; the first time it does not, says so once, until it does again. */
  private brokerAnswers(): boolean {
    const { status } = this.broker.health();
    if (status === 'ok') {
      return true;
    }
    this.pause(`the broker is ${status}`);
    return false;
  }

  /** Presence cannot be read now: said once in the log, until a read works again. */
  private pause(why: string): void {
    if (!this.paused) {
      this.paused = true;
      this.logger.warn(`presence events wait: the rooms' presence cannot be read now (${why})`);
    }
  }

  /** Pushes a frame to the room's local members; one still joining gets it after its join's reply. */
  private deliver(room: string, push: PushFrame): void {
    let sent = 0;
    for (const connection of this.host.rooms.get(room) ?? []) {
      if (this.host.streams?.replyPending(room, connection)) {
        connection.afterReply(() => connection.rooms.has(room) && connection.sendPush(push));
      } else if (connection.sendPush(push)) {
        sent++;
      }
    }
    this.host.metrics?.pushed(sent);
  }
}
