import type { StreamPosition } from '../broker/broker.interface.js';

/** A publisher waiting for its room message to reach this instance's members. */
interface Waiter {
  readonly offset: number;
  readonly epoch: string;
  readonly done: () => void;
}

/**
 * Room publishes of this instance waiting for its room streams to deliver them. With a
 * broker that carries messages back over a connection of their own (Redis), the broker's
 * answer to a publish can come before the message itself does: a publish resolves only
 * once this instance's members were handed it, so that a sender's reply follows its own
 * copy, whatever the broker. Waits are bounded: a message that does not come back in
 * time (its subscription lost, the instance catching up) holds no sender longer.
 */
export class DeliveryWaiters {
  private readonly waiting = new Map<string, Waiter[]>();

  /**
   * Resolves once {@link reached} passes `position` of `room`, or the room closes here;
   * after `maxMs` at the latest. Undefined when the room's stream, at `epoch` and
   * `offset`, has delivered it already.
   */
  wait(room: string, position: StreamPosition, maxMs: number, epoch: string | undefined, offset: number): Promise<void> | undefined {
    if (epoch === position.epoch && offset >= position.offset) {
      return undefined;
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { offset: position.offset, epoch: position.epoch, done: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => this.drop(room, waiter), maxMs);
      timer.unref();
      const list = this.waiting.get(room);
      list ? list.push(waiter) : this.waiting.set(room, [waiter]);
    });
  }

  /** `room`'s members got its message at `offset` of `epoch`: the publishes it covers go on. */
  reached(room: string, epoch: string, offset: number): void {
    const list = this.waiting.get(room);
    if (!list?.some((waiter) => waiter.epoch === epoch && waiter.offset <= offset)) {
      return; // none covered: nothing to copy
    }
    const left: Waiter[] = [];
    for (const waiter of list) {
      waiter.epoch !== epoch || waiter.offset > offset ? left.push(waiter) : waiter.done();
    }
    this.keep(room, left);
  }

  /** The room has no member here any more: no publish waits for it. */
  closed(room: string): void {
    this.waiting.get(room)?.forEach((waiter) => waiter.done());
    this.waiting.delete(room);
  }

  /** A wait whose time is up: it goes on, and is forgotten. */
  private drop(room: string, waiter: Waiter): void {
    this.keep(room, this.waiting.get(room)?.filter((other) => other !== waiter) ?? []);
    waiter.done();
  }

  /** `left` are the room's waiters from now on (none: the room is forgotten). */
  private keep(room: string, left: Waiter[]): void {
    left.length > 0 ? this.waiting.set(room, left) : this.waiting.delete(room);
  }
}
