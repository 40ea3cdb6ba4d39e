import { randomBytes } from 'node:crypto';
import type { HistoryEntry, HistoryPage, HistoryPolicy, StreamPosition } from './broker.interface.js';

/** A new epoch: short, random, URL-safe. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** One channel's history in memory: its epoch, its last offset, and a ring of its latest messages. */
class ChannelHistory {
  readonly epoch = newEpoch();
  offset = 0;
  /** Oldest first; at most `size` entries. */
  readonly entries: HistoryEntry[] = [];
  /** When the last message was added (the TTL runs from it). */
  touchedAt: number;

  constructor(now: number) {
    this.touchedAt = now;
  }
}

/** Channels kept before the first sweep of expired ones. */
const FIRST_SWEEP_AT = 1024;

/**
 * The histories of the channels of one {@link MemoryBus}: what `MemoryBroker` keeps for
 * publishes with a {@link HistoryPolicy}. A channel's history, and its epoch, end
 * `ttlMs` after its last message; the next use starts a new epoch.
 *
 * Every join reads its room's history, which starts one for a room never published to,
 * so expired histories are swept out: whenever the channels kept have doubled since the
 * last sweep, which keeps them within twice those still alive (as Redis expires its keys).
 */
export class MemoryHistories {
  private readonly channels = new Map<string, ChannelHistory>();
  private sweepAt = FIRST_SWEEP_AT;

  /** Channels with a history kept (some of them maybe expired, until the next sweep). */
  get size(): number {
    return this.channels.size;
  }

  /** Keeps `payload` as the channel's next message; returns its position. */
  append(channel: string, payload: string, policy: HistoryPolicy, now = Date.now()): StreamPosition {
    const history = this.current(channel, policy, now);
    const offset = ++history.offset;
    history.entries.push({ offset, payload });
    if (history.entries.length > policy.size) {
      history.entries.splice(0, history.entries.length - policy.size);
    }
    history.touchedAt = now;
    return { offset, epoch: history.epoch };
  }

  /** The channel's position, and with `since` what came after it when all of that is still kept. */
  read(channel: string, since: StreamPosition | undefined, policy: HistoryPolicy, now = Date.now()): HistoryPage {
    const history = this.current(channel, policy, now);
    const position = { offset: history.offset, epoch: history.epoch };
    if (!since) {
      return { position, complete: true, entries: [] };
    }
    const oldest = history.entries.length > 0 ? history.entries[0].offset : history.offset + 1;
    const complete = since.epoch === history.epoch && since.offset <= history.offset && oldest <= since.offset + 1;
    return { position, complete, entries: complete ? history.entries.filter((entry) => entry.offset > since.offset) : [] };
  }

  private current(channel: string, policy: HistoryPolicy, now: number): ChannelHistory {
    let history = this.channels.get(channel);
    if (!history || now - history.touchedAt > policy.ttlMs) {
      history = new ChannelHistory(now);
      this.channels.set(channel, history);
      if (this.channels.size >= this.sweepAt) {
        this.sweep(policy, now);
      }
    }
    return history;
  }

  private sweep(policy: HistoryPolicy, now: number): void {
    for (const [channel, history] of this.channels) {
      if (now - history.touchedAt > policy.ttlMs) {
        this.channels.delete(channel);
      }
    }
    this.sweepAt = Math.max(FIRST_SWEEP_AT, this.channels.size * 2);
  }
}
