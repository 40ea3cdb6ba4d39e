/** How a broker is doing: `ok`, still `connecting`, `degraded` (unreachable, retrying) or `closed`. */
export type BrokerState = 'ok' | 'connecting' | 'degraded' | 'closed';

/**
 * Where a message sits in its channel's history: its offset (consecutive per channel,
 * across all instances) and the history's epoch (changes whenever the history is lost).
 */
export interface StreamPosition {
  /** The message's offset in its channel. */
  readonly offset: number;
  /** The history's epoch. */
  readonly epoch: string;
}

/** How much of a channel's history a broker keeps: a publish that asks for it keeps it. */
export interface HistoryPolicy {
  /** At least this many of the channel's latest messages. */
  readonly size: number;
  /** For this long after the channel's last message, in ms; then the history (and its epoch) is gone. */
  readonly ttlMs: number;
}

/** A message read back from a channel's history. */
export interface HistoryEntry {
  /** Its offset in the channel. */
  readonly offset: number;
  /** Its payload, as published. */
  readonly payload: string;
}

/** What a history read found. */
export interface HistoryPage {
  /** The channel's current position: the epoch, and the offset of its latest message (0 when none yet). */
  readonly position: StreamPosition;
  /**
   * With `since`: whether every message after it is still kept in this epoch (then all of
   * them are in `entries`); false when the epoch differs, some are gone, or `since` is ahead
   * of the channel. Without `since`: true, and `entries` is empty.
   */
  readonly complete: boolean;
  /** The messages after `since`, in offset order; empty when not complete. */
  readonly entries: readonly HistoryEntry[];
}

/** A broker's health, as `GET /health` reports it. */
export interface BrokerHealth {
  /** The implementation: `memory`, `redis`, … */
  readonly type: string;
  /** Its state. */
  readonly status: BrokerState;
  /** Why it is not `ok`, when it is not. */
  readonly detail?: string;
}

/**
 * The transport between the instances of an application: pub/sub on named channels plus
 * a presence store. `RealtimeHub` holds all room logic and talks to the broker only
 * through this interface, so a broker is a thin adapter. Two ship with the plugin:
 * `MemoryBroker` (the default: one process) and `RedisBroker` (`nestjs-realtime/redis`).
 *
 * Contract (checked by the suite `brokerContract` of `nestjs-realtime/testing`, which a
 * third-party broker can run too):
 * - a payload published on a channel reaches, once, every instance subscribed to that
 *   channel (the publisher included, if subscribed), in publish order per publisher;
 * - an instance receives only the channels it subscribed to; `subscribe` and `unsubscribe`
 *   calls of a channel that overlap (made without waiting for each other) take effect in
 *   call order, so the last call decides;
 * - presence entries are per instance, and vanish when their instance closes the broker
 *   or stops refreshing them for `presenceTtlMs` (a dead process);
 * - no call throws, and only `publish` rejects, because the transport is down: the broker
 *   reports `degraded`, keeps what it must restore (subscriptions, presence) and restores
 *   it when the transport is back;
 * - `publish` resolves only once the message was taken, and rejects with
 *   `BrokerUnavailableError` when it cannot be: nothing is acknowledged and then dropped;
 * - a publish with a {@link HistoryPolicy} gets the channel's next offset (consecutive
 *   across all instances, however many publish at once) and is kept in the channel's
 *   history; subscribers get its position with the payload, in offset order.
 */
export interface RealtimeBroker extends BrokerPubSub, PresenceStore {}

/** Gets the payloads of subscribed channels, with their position when published with history. */
export type BrokerMessageListener = (channel: string, payload: string, position?: StreamPosition) => void;

/** The publish/subscribe half of a {@link RealtimeBroker}, with its life cycle. */
export interface BrokerPubSub {
  /**
   * Connects. `onMessage` gets every payload of the channels this instance subscribes to,
   * with its position when it was published with history. `onRestored` is called once the
   * broker is back after an outage or a stall (subscriptions restored): what was
   * published meanwhile may have been missed, and can be read from history.
   */
  start(instanceId: string, onMessage: BrokerMessageListener, onRestored?: () => void): Promise<void>;
  /**
   * Publishes. Resolves once the broker took the payload: with its {@link StreamPosition}
   * where the channel keeps history, else `undefined`. While the transport is down,
   * payloads may be kept up to a bound and sent in order once it is back; one the broker
   * cannot take rejects with `BrokerUnavailableError`.
   */
  publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined>;
  /**
   * Reads a channel's history: its current position, and with `since` the messages after
   * it when they are all still kept. Starts the channel's epoch when it has none yet.
   * Rejects with `BrokerUnavailableError` when the broker cannot answer now.
   */
  history(channel: string, since: StreamPosition | undefined, history: HistoryPolicy): Promise<HistoryPage>;
  /** Subscribes; resolves once messages published from now on will arrive (or at once when degraded). */
  subscribe(channel: string): Promise<void>;
  /** Unsubscribes. */
  unsubscribe(channel: string): Promise<void>;
  /** Current health. */
  health(): BrokerHealth;
  /** Removes this instance's presence and disconnects. */
  close(): Promise<void>;
}

/** The presence half of a {@link RealtimeBroker}: who is in a room, on any live instance. */
export interface PresenceStore {
  /** Records `member` as present in `room` on this instance; resolves once others can see it. */
  addPresence(room: string, member: string): Promise<void>;
  /** Removes this instance's entry of `member` in `room`. */
  removePresence(room: string, member: string): Promise<void>;
  /**
   * The distinct members present in `room` on any live instance. When the broker cannot
   * tell now, it may answer with this instance's own members; with `strict`, it rejects
   * instead (presence events compare reads, and a partial one would look like everyone
   * else leaving).
   */
  presence(room: string, options?: { strict?: boolean }): Promise<string[]>;
}
