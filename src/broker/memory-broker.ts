import { BrokerUnavailableError } from './broker-errors.js';
import type {
  BrokerHealth,
  BrokerMessageListener,
  HistoryPage,
  HistoryPolicy,
  RealtimeBroker,
  StreamPosition,
} from './broker.interface.js';
import { MemoryHistories } from './memory-history.js';
import { addOne, hasOne, itemsOf, type OneOrSet, removeOne } from './one-or-set.js';

/** Options of {@link MemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * The bus shared by the brokers that should see each other: several applications in
   * one process (tests, mostly). Default: a bus of its own, i.e. a single instance.
   */
  bus?: MemoryBus;
}

type Listener = BrokerMessageListener;

/** What every publish without history resolves with: one settled promise, shared. */
const TAKEN: Promise<undefined> = Promise.resolve(undefined);

/** What instances of {@link MemoryBroker} share: subscriptions and presence, in memory. */
export class MemoryBus {
  /** @internal channel → subscribed instances' listeners */
  readonly channels = new Map<string, OneOrSet<Listener>>();
  /** @internal room → member → instances where it is present */
  readonly presence = new Map<string, Map<string, Set<string>>>();
  /** @internal the channels' histories */
  readonly histories = new MemoryHistories();
}

/**
 * The default broker: rooms and presence within one process, no setup, no I/O. Delivery
 * is synchronous. Instances given the same {@link MemoryBus} behave like instances of one
 * application on a real broker, which is what the shared broker tests rely on.
 */
export class MemoryBroker implements RealtimeBroker {
  private readonly bus: MemoryBus;
  private instanceId = '';
  private listener: Listener | undefined;
  private readonly present = new Map<string, Set<string>>();
  private closed = false;

  constructor(options: MemoryBrokerOptions = {}) {
    this.bus = options.bus ?? new MemoryBus();
  }

  start(instanceId: string, onMessage: BrokerMessageListener): Promise<void> {
    this.instanceId = instanceId;
    this.listener = onMessage;
    this.closed = false;
    return Promise.resolve();
  }

  publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined> {
    if (this.closed) {
      return Promise.reject(new BrokerUnavailableError('the memory broker is closed'));
    }
    const position = history ? this.bus.histories.append(channel, payload, history) : undefined;
    // A copy of a set: a listener may subscribe or unsubscribe as it runs.
    for (const listener of [...itemsOf(this.bus.channels.get(channel))]) {
      listener(channel, payload, position);
    }
    return position ? Promise.resolve(position) : TAKEN;
  }

  history(channel: string, since: StreamPosition | undefined, history: HistoryPolicy): Promise<HistoryPage> {
    if (this.closed) {
      return Promise.reject(new BrokerUnavailableError('the memory broker is closed'));
    }
    return Promise.resolve(this.bus.histories.read(channel, since, history));
  }

  subscribe(channel: string): Promise<void> {
    // The bus is the record of what this instance subscribed to: no set of its own per channel.
    if (this.listener) {
      addOne(this.bus.channels, channel, this.listener);
    }
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    if (this.listener) {
      removeOne(this.bus.channels, channel, this.listener);
    }
    return Promise.resolve();
  }

  addPresence(room: string, member: string): Promise<void> {
    let members = this.present.get(room);
    if (!members) {
      members = new Set();
      this.present.set(room, members);
    }
    members.add(member);
    let shared = this.bus.presence.get(room);
    if (!shared) {
      shared = new Map();
      this.bus.presence.set(room, shared);
    }
    let instances = shared.get(member);
    if (!instances) {
      instances = new Set();
      shared.set(member, instances);
    }
    instances.add(this.instanceId);
    return Promise.resolve();
  }

  removePresence(room: string, member: string): Promise<void> {
    const members = this.present.get(room);
    members?.delete(member);
    if (members?.size === 0) {
      this.present.delete(room);
    }
    const shared = this.bus.presence.get(room);
    const instances = shared?.get(member);
    instances?.delete(this.instanceId);
    if (instances?.size === 0) {
      shared!.delete(member);
      if (shared!.size === 0) {
        this.bus.presence.delete(room);
      }
    }
    return Promise.resolve();
  }

  presence(room: string): Promise<string[]> {
    return Promise.resolve([...(this.bus.presence.get(room)?.keys() ?? [])]);
  }

  health(): BrokerHealth {
    return { type: 'memory', status: this.closed ? 'closed' : 'ok' };
  }

  async close(): Promise<void> {
    const listener = this.listener;
    const channels = listener ? [...this.bus.channels.keys()].filter((channel) => hasOne(this.bus.channels, channel, listener)) : [];
    for (const channel of channels) {
      await this.unsubscribe(channel);
    }
    for (const [room, members] of [...this.present]) {
      for (const member of [...members]) {
        await this.removePresence(room, member);
      }
    }
    this.closed = true;
  }
}
