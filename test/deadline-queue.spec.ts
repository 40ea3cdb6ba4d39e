import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { type Deadline, DeadlineQueue } from '../src/gateway/deadline-queue.js';

/** An item of the queue: a name, and the place the queue keeps in it. */
interface Named<N> extends Deadline {
  readonly name: N;
}

function named<N>(name: N): Named<N> {
  return { name, deadlineAt: 0, deadlineIndex: -1 };
}

// The queue's clock (Date.now and setTimeout) is node:test's mock: time moves only by tick().
const T0 = 1_000_000;

describe('DeadlineQueue (token expiry under one timer)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  it('runs deadlines in time order, after they pass, and not the removed or moved-out ones', () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<Named<string>>((item) => expired.push(item.name));
    const now = Date.now();
    const [a, b, c, gone, moved] = ['a', 'b', 'c', 'gone', 'moved'].map(named) as [
      Named<string>,
      Named<string>,
      Named<string>,
      Named<string>,
      Named<string>,
    ];
    queue.set(c, now + 60);
    queue.set(a, now + 20);
    queue.set(b, now + 40);
    queue.set(gone, now + 30);
    queue.set(moved, now + 10);
    queue.remove(gone);
    queue.set(moved, now + 10_000);
    queue.set(b, now + 5); // moved earlier than everything
    assert.equal(queue.size, 4);
    mock.timers.tick(4);
    assert.deepEqual(expired, [], 'nothing before its deadline');
    mock.timers.tick(1);
    assert.deepEqual(expired, ['b']);
    mock.timers.tick(14);
    assert.deepEqual(expired, ['b']);
    mock.timers.tick(1);
    assert.deepEqual(expired, ['b', 'a']);
    mock.timers.tick(40);
    assert.deepEqual(expired, ['b', 'a', 'c']);
    assert.equal(queue.size, 1, 'only the one moved far away is left');
    queue.remove(moved);
    queue.remove(moved); // twice: nothing happens
    assert.equal(queue.size, 0);
  });

  it('keeps its heap in order through many random sets, moves and removals', () => {
    const expired: number[] = [];
    const queue = new DeadlineQueue<Named<number>>((item) => expired.push(item.name));
    const base = Date.now() + 20;
    const items = Array.from({ length: 500 }, (_, i) => named(i));
    items.forEach((item, i) => queue.set(item, base + ((i * 7919) % 50)));
    for (let i = 0; i < 500; i += 3) {
      queue.remove(items[i]!);
    }
    for (let i = 1; i < 500; i += 5) {
      if (i % 3 !== 0) {
        queue.set(items[i]!, base + ((i * 104_729) % 50));
      }
    }
    // A removed item set again goes back into the queue.
    queue.set(items[6]!, base + 25);
    mock.timers.tick(20 + 49);
    assert.equal(expired.length, 500 - 167 + 1);
    assert.ok(expired.includes(6));
    const deadlines = expired.map((name) => items[name]!.deadlineAt);
    assert.deepEqual(
      deadlines,
      [...deadlines].sort((x, y) => x - y),
      'expired in deadline order',
    );
    assert.ok(
      items.every((item) => item.deadlineIndex === -1),
      'every item is out of the queue',
    );
    assert.equal(queue.size, 0);
  });

  it('runs a deadline 40 days away (past the longest timer Node allows) only once it passes', () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<Named<string>>((item) => expired.push(item.name));
    const days40 = 40 * 24 * 3600 * 1000; // over setTimeout's 2^31 - 1 ms
    queue.set(named('far'), Date.now() + days40);
    mock.timers.tick(days40 - 1);
    assert.deepEqual(expired, []);
    mock.timers.tick(1);
    assert.deepEqual(expired, ['far']);
    assert.equal(queue.size, 0);
  });

  it('keeps its deadlines small integers as the process runs for weeks, and runs each on time', () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<Named<string>>((item) => expired.push(item.name));
    const day = 24 * 3600 * 1000;
    const late = named('late');
    queue.set(late, Date.now() + 40 * day);
    mock.timers.tick(30 * day); // past 2^31 ms since the queue was made
    const soon = named('soon');
    queue.set(soon, Date.now() + 10.5); // rounded up: never early
    for (const item of [late, soon]) {
      assert.ok(Number.isInteger(item.deadlineAt) && Math.abs(item.deadlineAt) < 2 ** 30, `${item.name} at ${item.deadlineAt}`);
    }
    mock.timers.tick(10);
    assert.deepEqual(expired, []);
    mock.timers.tick(1);
    assert.deepEqual(expired, ['soon']);
    mock.timers.tick(10 * day - 12);
    assert.deepEqual(expired, ['soon']);
    mock.timers.tick(1);
    assert.deepEqual(expired, ['soon', 'late']);
  });

  it('stop() runs nothing more; a later set() arms it again', () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<Named<string>>((item) => expired.push(item.name));
    queue.set(named('a'), Date.now() + 10);
    queue.stop();
    mock.timers.tick(20);
    assert.deepEqual(expired, []);
    queue.set(named('b'), Date.now() + 10);
    mock.timers.tick(10);
    assert.deepEqual(expired, ['a', 'b']);
  });
});
