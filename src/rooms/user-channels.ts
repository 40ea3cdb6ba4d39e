import type { BrokerPubSub } from '../broker/broker.interface.js';
import type { Connection } from '../gateway/connection.js';
import { CloseCode } from '../protocol/close-codes.js';
import { userChannel } from './cluster-envelope.js';
import { addOne, itemsOf, type OneOrSet, removeOne } from '../broker/one-or-set.js';

/**
 * The users of this instance: their connections here, and the user channels this instance
 * is subscribed to, one per user with a connection here (or an upgrade under way), made by
 * the first hold and dropped with the last.
 */
export class UserChannels {
  /** user → its connections on this instance */
  private readonly local = new Map<string, OneOrSet<Connection>>();
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

  /** The connections of `sub` on this instance. */
  connectionsOf(sub: string): Iterable<Connection> {
    return itemsOf(this.local.get(sub));
  }

  /** Counts `connection` as `sub`'s from now on (the user is held already). */
  add(connection: Connection, sub: string): void {
    connection.user = sub;
    addOne(this.local, sub, connection);
  }

  /** A connection that closed is no longer its user's, and gives its user's hold back. */
  remove(connection: Connection): void {
    const sub = connection.user;
    if (sub === undefined) {
      return;
    }
    removeOne(this.local, sub, connection);
    this.release(sub);
  }

  /** Closes every local connection of `sub` with 4003. */
  kick(sub: string, reason: string): void {
    for (const connection of [...this.connectionsOf(sub)]) {
      connection.close(CloseCode.FORBIDDEN, reason, 'kicked');
    }
  }
}
