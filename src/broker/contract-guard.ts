import type {
  BrokerHealth,
  BrokerMessageListener,
  HistoryPage,
  HistoryPolicy,
  RealtimeBroker,
  StreamPosition,
} from './broker.interface.js';
import { BrokerTimeoutError, BrokerUnavailableError, messageOf } from './broker-errors.js';
import { promiseOf } from './promise-of.js';
import { untilDeadline } from '../limits/deadline.js';
import { describeValue } from '../options/describe-value.js';

/** What a broker must be able to do (`RealtimeBroker`'s methods). */
const BROKER_METHODS = [
  'start',
  'publish',
  'history',
  'subscribe',
  'unsubscribe',
  'health',
  'close',
  'addPresence',
  'removePresence',
  'presence',
] as const;

/**
 * Throws a clear error at startup unless `broker` has every method of a `RealtimeBroker`
 * (`broker: 'redis'` from a configuration file, say, would otherwise fail later with
 * "this.broker.start is not a function").
 */
function checkBroker(broker: unknown): void {
  const missing = BROKER_METHODS.filter((method) => typeof (broker as Record<string, unknown> | null | undefined)?.[method] !== 'function');
  if (missing.length > 0) {
    const got =
      typeof broker === 'function'
        ? `${describeValue(broker)}: pass an instance (new ${broker.name || 'YourBroker'}(…))`
        : typeof broker === 'object' && broker !== null
          ? `an object without ${missing.join(', ')}`
          : describeValue(broker);
    throw new TypeError(`Realtime option broker must be a RealtimeBroker (a MemoryBroker, a RedisBroker or your own), got ${got}`);
  }
}

/**
 * The broker as `RealtimeHub` calls it: a call that throws, against the contract ("no
 * call throws"), rejects instead, and a `health()` that throws reads as `degraded`. Many
 * of the hub's broker calls run from timers and close handlers, where a throw would end
 * the process; a rejection is logged there.
 *
 * Calls that a join, a leave, a sign-in, a presence read or the shutdown wait for get a
 * deadline, so that a broker that never answers cannot hang them: `subscribe`,
 * `unsubscribe`, the presence writes and `close` then reject with `BrokerTimeoutError`
 * (the hub logs it and goes on, as when the broker is degraded), and the reads
 * (`history`, `presence`) with `BrokerUnavailableError`. `start` may take as long as the
 * broker needs to connect, and `publish` as long as it keeps the payload (it must not be
 * refused and then sent).
 */
export class ContractGuard implements RealtimeBroker {
  constructor(
    private readonly broker: RealtimeBroker,
    /** How long a bounded call may take, in ms (`limits.brokerTimeoutMs`). */
    private readonly timeoutMs: number,
  ) {
    checkBroker(broker);
  }

  start(instanceId: string, onMessage: BrokerMessageListener, onRestored?: () => void): Promise<void> {
    return promiseOf(() => this.broker.start(instanceId, onMessage, onRestored));
  }

  publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined> {
    return promiseOf(() => this.broker.publish(channel, payload, history));
  }

  history(channel: string, since: StreamPosition | undefined, history: HistoryPolicy): Promise<HistoryPage> {
    return this.read('history', () => this.broker.history(channel, since, history));
  }

  subscribe(channel: string): Promise<void> {
    return this.write('subscribe', () => this.broker.subscribe(channel));
  }

  unsubscribe(channel: string): Promise<void> {
    return this.write('unsubscribe', () => this.broker.unsubscribe(channel));
  }

  health(): BrokerHealth {
    try {
      return this.broker.health();
    } catch (error) {
      return { type: this.broker.constructor.name, status: 'degraded', detail: `health() threw: ${messageOf(error)}` };
    }
  }

  close(): Promise<void> {
    return this.write('close', () => this.broker.close());
  }

  addPresence(room: string, member: string): Promise<void> {
    return this.write('addPresence', () => this.broker.addPresence(room, member));
  }

  removePresence(room: string, member: string): Promise<void> {
    return this.write('removePresence', () => this.broker.removePresence(room, member));
  }

  presence(room: string, options?: { strict?: boolean }): Promise<string[]> {
    return this.read('presence', () => this.broker.presence(room, options));
  }

  /** A call whose effect the broker keeps or restores: past the deadline, `BrokerTimeoutError`. */
  private write(command: string, call: () => Promise<void>): Promise<void> {
    return this.bounded(call, () => new BrokerTimeoutError(command, this.timeoutMs));
  }

  /** A read: past the deadline, `BrokerUnavailableError` (the broker cannot answer now). */
  private read<T>(command: string, call: () => Promise<T>): Promise<T> {
    return this.bounded(call, () => new BrokerUnavailableError(`the broker did not answer ${command} within ${this.timeoutMs} ms`));
  }

  /** Its timer keeps the process alive: a call made while nothing else does (during start-up) must still reach its deadline. */
  private async bounded<T>(call: () => Promise<T>, late: () => Error): Promise<T> {
    const result = await untilDeadline(promiseOf(call), this.timeoutMs, true);
    if (result === 'timeout') {
      throw late();
    }
    return result;
  }
}
