import type { BrokerPubSub } from '../broker/broker.interface.js';
import { userChannel } from './cluster-envelope.js';

/**
 * The user channels this instance is subscribed to: one per user with a connection here
 * (or an upgrade under way), made by the first hold and dropped with the last.
 */
export class UserChannels {
  /** user → holds (connections of the user, plus upgrades under way) */
  private readonly holds = new Map<string, number>();
  /** user → the subscription to the user channel, while it is being made */
  private readonly subscriptions = new Map<string, Promise<void>>();

  constructor(
    private readonly broker: BrokerPubSub,
    /** Makes a broker call that cannot reject (a failure is logged). */
    private readonly settle: (work: Promise<void>, what: string) => Promise<void>,
  ) {}

  /** Takes a hold on `sub`'s channel; resolves once messages to the user reach this instance. */
  async hold(sub: string): Promise<void> {
    const holds = (this.holds.get(sub) ?? 0) + 1;
    this.holds.set(sub, holds);
    if (holds === 1) {
      const subscription = this.settle(this.broker.subscribe(userChannel(sub)), 'subscribe');
      this.subscriptions.set(sub, subscription);
      await subscription;
      if (this.subscriptions.get(sub) === subscription) {
        this.subscriptions.delete(sub);
      }
    } else {
      await this.subscriptions.get(sub);
    }
  }

  /** Releases a hold; the last one unsubscribes. */
  release(sub: string): void {
    const holds = (this.holds.get(sub) ?? 0) - 1;
    if (holds > 0) {
      this.holds.set(sub, holds);
      return;
    }
    this.holds.delete(sub);
    this.subscriptions.delete(sub);
    void this.settle(this.broker.unsubscribe(userChannel(sub)), 'unsubscribe');
  }
}
