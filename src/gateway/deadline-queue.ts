const MAX_TIMER_MS = 2 ** 31 - 1;

/** One item's place in a {@link DeadlineQueue}. */
export interface Deadline<T> {
  readonly item: T;
  /**
   * When, in whole ms after the queue was made (rounded up: never early). Small integers
   * are stored in the entry itself; an epoch time would take a number object of its own.
   */
  at: number;
  /** @internal Its index in the heap; -1 once out of the queue. */
  index: number;
}

/**
 * Many deadlines, one timer: a binary min-heap by time, and a single timer armed for
 * the earliest. Token expiry used a timer per connection (a `Timeout`, its closure and
 * its list entry, about 250 bytes each); here a connection costs one small entry.
 * Setting, moving and removing a deadline are O(log n); the timer is re-armed only when
 * the earliest deadline changes. Long deadlines are reached in steps, since Node timers
 * top out near 24.8 days.
 */
export class DeadlineQueue<T> {
  private readonly heap: Deadline<T>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private readonly epoch = Date.now();

  /** @param expire called once for each item whose deadline has passed, in deadline order */
  constructor(private readonly expire: (item: T) => void) {}

  get size(): number {
    return this.heap.length;
  }

  /** Puts `item` in the queue at `epochMs`, or moves it there if `deadline` is its entry. */
  set(item: T, epochMs: number, deadline?: Deadline<T>): Deadline<T> {
    const at = Math.ceil(epochMs - this.epoch);
    if (deadline && deadline.index >= 0) {
      const earlier = at < deadline.at;
      deadline.at = at;
      earlier ? this.up(deadline.index) : this.down(deadline.index);
    } else {
      deadline = { item, at, index: this.heap.length };
      this.heap.push(deadline);
      this.up(deadline.index);
    }
    this.arm();
    return deadline;
  }

  /** Takes a deadline out of the queue; nothing happens if it already left. */
  remove(deadline: Deadline<T>): void {
    if (deadline.index >= 0) {
      this.take(deadline);
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
    const now = Date.now() - this.epoch;
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const first = this.heap[0]!;
      this.take(first);
      this.expire(first.item);
    }
    this.arm();
  }

  private take(deadline: Deadline<T>): void {
    const index = deadline.index;
    const last = this.heap.pop()!;
    deadline.index = -1;
    if (last !== deadline) {
      this.heap[index] = last;
      last.index = index;
      this.down(index);
      this.up(last.index);
    }
  }

  /** Arms the timer for the earliest deadline, unless it already is. */
  private arm(): void {
    const first = this.heap[0];
    if (!first) {
      this.stop();
      return;
    }
    if (this.timer && first.at === this.armedFor) {
      return;
    }
    clearTimeout(this.timer);
    this.armedFor = first.at;
    // Past a step's end the timer fires early and re-arms itself for what remains.
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(first.at + this.epoch - Date.now(), 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  private up(index: number): void {
    const entry = this.heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = this.heap[parentIndex]!;
      if (parent.at <= entry.at) {
        break;
      }
      this.heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    this.heap[index] = entry;
    entry.index = index;
  }

  private down(index: number): void {
    const entry = this.heap[index]!;
    const length = this.heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) {
        break;
      }
      if (child + 1 < length && this.heap[child + 1]!.at < this.heap[child]!.at) {
        child++;
      }
      const smaller = this.heap[child]!;
      if (smaller.at >= entry.at) {
        break;
      }
      this.heap[index] = smaller;
      smaller.index = index;
      index = child;
    }
    this.heap[index] = entry;
    entry.index = index;
  }
}
