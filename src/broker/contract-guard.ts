import type {
  BrokerHealth,
  BrokerMessageListener,
  HistoryPage,
  HistoryPolicy,
  RealtimeBroker,
  StreamPosition,
} from './broker.interface.js';
import { messageOf } from './broker-errors.js';
import { promiseOf } from './promise-of.js';

/**
 * The broker as `RealtimeHub` calls it: a call that throws, against the contract ("no
 * call throws"), rejects instead, and a `health()` that throws reads as `degraded`. Many
 * of the hub's broker calls run from timers and close handlers, where a throw would end
 * the process; a rejection is logged there.
 */
export class ContractGuard implements RealtimeBroker {
  constructor(private readonly broker: RealtimeBroker) {}

  start(instanceId: string, onMessage: BrokerMessageListener, onRestored?: () => void): Promise<void> {
    return promiseOf(() => this.broker.start(instanceId, onMessage, onRestored));
  }

  publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined> {
    return promiseOf(() => this.broker.publish(channel, payload, history));
  }

  history(channel: string, since: StreamPosition | undefined, history: HistoryPolicy): Promise<HistoryPage> {
    return promiseOf(() => this.broker.history(channel, since, history));
  }

  subscribe(channel: string): Promise<void> {
    return promiseOf(() => this.broker.subscribe(channel));
  }

  unsubscribe(channel: string): Promise<void> {
    return promiseOf(() => this.broker.unsubscribe(channel));
  }

  health(): BrokerHealth {
    try {
      return this.broker.health();
    } catch (error) {
      return { type: this.broker.constructor.name, status: 'degraded', detail: `health() threw: ${messageOf(error)}` };
    }
  }

  close(): Promise<void> {
    return promiseOf(() => this.broker.close());
  }

  addPresence(room: string, member: string): Promise<void> {
    return promiseOf(() => this.broker.addPresence(room, member));
  }

  removePresence(room: string, member: string): Promise<void> {
    return promiseOf(() => this.broker.removePresence(room, member));
  }

  presence(room: string, options?: { strict?: boolean }): Promise<string[]> {
    return promiseOf(() => this.broker.presence(room, options));
  }
}
