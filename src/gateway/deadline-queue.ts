import { MAX_TIMER_MS } from '../limits/deadline.js';

/**
 * Once this many ms have passed since the queue's epoch, the epoch moves to now and the
 * deadlines with it, so that they stay small integers (see {@link Deadline.deadlineAt}).
 */
const REBASE_AFTER_MS = 2 ** 29;

/**
 * An item with its place in a {@link DeadlineQueue}, which the queue keeps in the item
 * itself: no entry object per item.
 */
export interface Deadline {
  /**
   * When, in whole ms after the queue's epoch (rounded up: never early). Small integers
   * are stored in the object itself; an epoch time would take a number object of its own.
   */
  deadlineAt: number;
  /** Its index in the queue's heap; -1 while out of the queue. */
  deadlineIndex: number;
}

/**
 * Many deadlines, one timer: a binary min-heap by time, and a single timer armed for
 * the earliest. Token expiry used a timer per connection (a `Timeout`, its closure and
 * its list entry, about 250 bytes each); here a connection costs two numbers of its own.
 * Setting, moving and removing a deadline are O(log n); the timer is re-armed only when
 * the earliest deadline changes. Long deadlines are reached in steps, since Node timers
 * top out near 24.8 days.
 */
export class DeadlineQueue<T extends Deadline> {
  private readonly heap: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private epoch = Date.now();

  /** @param expire called once for each item whose deadline has passed, in deadline order */
  constructor(private readonly expire: (item: T) => void) {}

  get size(): number {
    return this.heap.length;
  }

  /** Puts `item` in the queue at `epochMs`, or moves it there if it is in the queue. */
  set(item: T, epochMs: number): void {
    this.rebase();
    const at = Math.ceil(epochMs - this.epoch);
    if (item.deadlineIndex >= 0) {
      const earlier = at < item.deadlineAt;
      item.deadlineAt = at;
      earlier ? this.up(item.deadlineIndex) : this.down(item.deadlineIndex);
    } else {
      item.deadlineAt = at;
      item.deadlineIndex = this.heap.length;
      this.heap.push(item);
      this.up(item.deadlineIndex);
    }
    this.arm();
  }

  /** Takes an item out of the queue; nothing happens if it is not in it. */
  remove(item: T): void {
    if (item.deadlineIndex >= 0) {
      this.take(item);
      this.arm();
    }
  }

  /** Stops the timer; the deadlines stay, and are not run. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    this.rebase();
    const now = Date.now() - this.epoch;
    while (this.heap.length > 0 && this.heap[0]!.deadlineAt <= now) {
      const first = this.heap[0]!;
      this.take(first);
      this.expire(first);
    }
    this.arm();
  }

  /** Moves the epoch to now once it is old, and every deadline with it (their order holds). */
  private rebase(): void {
    const shift = Date.now() - this.epoch;
    if (shift >= REBASE_AFTER_MS) {
      this.epoch += shift;
      this.armedFor -= shift;
      for (const item of this.heap) {
        item.deadlineAt -= shift;
      }
    }
  }

  private take(item: T): void {
    const index = item.deadlineIndex;
    const last = this.heap.pop()!;
    item.deadlineIndex = -1;
    if (last !== item) {
      this.heap[index] = last;
      last.deadlineIndex = index;
      this.down(index);
      this.up(last.deadlineIndex);
    }
  }

  /** Arms the timer for the earliest deadline, unless it already is. */
  private arm(): void {
    const first = this.heap[0];
    if (!first) {
      this.stop();
      return;
    }
    if (this.timer && first.deadlineAt === this.armedFor) {
      return;
    }
    clearTimeout(this.timer);
    this.armedFor = first.deadlineAt;
    // Past a step's end the timer fires early and re-arms itself for what remains.
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(first.deadlineAt + this.epoch - Date.now(), 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  private up(index: number): void {
    const entry = this.heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = this.heap[parentIndex]!;
      if (parent.deadlineAt <= entry.deadlineAt) {
        break;
      }
      this.heap[index] = parent;
      parent.deadlineIndex = index;
      index = parentIndex;
    }
    this.heap[index] = entry;
    entry.deadlineIndex = index;
  }

  private down(index: number): void {
    const entry = this.heap[index]!;
    const length = this.heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) {
        break;
      }
      if (child + 1 < length && this.heap[child + 1]!.deadlineAt < this.heap[child]!.deadlineAt) {
        child++;
      }
      const smaller = this.heap[child]!;
      if (smaller.deadlineAt >= entry.deadlineAt) {
        break;
      }
      this.heap[index] = smaller;
      smaller.deadlineIndex = index;
      index = child;
    }
    this.heap[index] = entry;
    entry.deadlineIndex = index;
  }
}
