import type { BrokerPubSub } from '../broker/broker.interface.js';
import type { Connection } from '../gateway/connection.js';
import { CloseCode } from '../protocol/close-codes.js';
import { userChannel } from './cluster-envelope.js';
import { addOne, itemsOf, type OneOrSet, removeOne } from '../broker/one-or-set.js';

/**
 * The users of this instance: their connections here, and the user channels this instance
 * is subscribed to, one per user with a connection here (or an upgrade under way), made by
 * the first hold and dropped with the last. A user's holds are its connections here plus
 * the holds not yet turned into one (upgrades under way): no count is kept per user for
 * as long as it is connected, only while a hold waits for its connection.
 */
export class UserChannels {
  /** user → its connections on this instance */
  private readonly local = new Map<string, OneOrSet<Connection>>();
  /** user → holds not yet turned into a connection by {@link add} */
  private readonly waiting = new Map<string, number>();
  /** user → the subscription to the user channel, while it is being made */
  private readonly subscriptions = new Map<string, Promise<void>>();

  constructor(
    private readonly broker: BrokerPubSub,
    /** Makes a broker call that cannot reject (a failure is logged). */
    private readonly settle: (work: Promise<void>, what: string) => Promise<void>,
  ) {}

  /** Takes a hold on `sub`'s channel; resolves once messages to the user reach this instance. */
  async hold(sub: string): Promise<void> {
    const first = !this.held(sub);
    this.waiting.set(sub, (this.waiting.get(sub) ?? 0) + 1);
    if (first) {
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

  /** Releases a hold that no connection took over (see {@link add}); the last one unsubscribes. */
  release(sub: string): void {
    if (takeWaiting(this.waiting, sub)) {
      this.dropIfUnheld(sub);
    }
  }

  /** The connections of `sub` on this instance. */
  connectionsOf(sub: string): Iterable<Connection> {
    return itemsOf(this.local.get(sub));
  }

  /** Counts `connection` as `sub`'s from now on: it takes over a hold of the user's ({@link hold}). */
  add(connection: Connection, sub: string): void {
    takeWaiting(this.waiting, sub);
    connection.user = sub;
    addOne(this.local, sub, connection);
  }

  /** A connection that closed is no longer its user's, and gives its user's hold back. */
  remove(connection: Connection): void {
    const sub = connection.user;
    if (sub === undefined) {
      return;
    }
    if (removeOne(this.local, sub, connection)) {
      this.dropIfUnheld(sub);
    }
  }

  /** Closes every local connection of `sub` with 4003. */
  kick(sub: string, reason: string): void {
    for (const connection of [...this.connectionsOf(sub)]) {
      connection.close(CloseCode.FORBIDDEN, reason, 'kicked');
    }
  }

  /** Whether anything holds `sub`'s channel: a connection here or a hold waiting for one. */
  private held(sub: string): boolean {
    return this.local.has(sub) || this.waiting.has(sub);
  }

  /** Unsubscribes from `sub`'s channel once nothing holds it. */
  private dropIfUnheld(sub: string): void {
    if (this.held(sub)) {
      return;
    }
    this.subscriptions.delete(sub);
    void this.settle(this.broker.unsubscribe(userChannel(sub)), 'unsubscribe');
  }
}

/** Takes one waiting hold of `sub`'s off the count; false when it had none. */
function takeWaiting(waiting: Map<string, number>, sub: string): boolean {
  const count = waiting.get(sub);
  if (count === undefined) {
    return false;
  }
  if (count > 1) {
    waiting.set(sub, count - 1);
  } else {
    waiting.delete(sub);
  }
  return true;
}
