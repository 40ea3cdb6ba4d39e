import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeadlineQueue } from '../src/gateway/deadline-queue.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('DeadlineQueue (token expiry under one timer)', () => {
  it('runs deadlines in time order, after they pass, and not the removed or moved-out ones', async () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<string>((item) => expired.push(item));
    const now = Date.now();
    queue.set('c', now + 60);
    queue.set('a', now + 20);
    const b = queue.set('b', now + 40);
    const gone = queue.set('gone', now + 30);
    const moved = queue.set('moved', now + 10);
    queue.remove(gone);
    queue.set('moved', now + 10_000, moved);
    queue.set('b', now + 5, b); // moved earlier than everything
    assert.equal(queue.size, 4);
    await sleep(30);
    assert.deepEqual(expired, ['b', 'a']);
    await sleep(60);
    assert.deepEqual(expired, ['b', 'a', 'c']);
    assert.equal(queue.size, 1, 'only the one moved far away is left');
    queue.remove(moved);
    queue.remove(moved); // twice: nothing happens
    assert.equal(queue.size, 0);
  });

  it('keeps its heap in order through many random sets, moves and removals', async () => {
    const expired: number[] = [];
    const queue = new DeadlineQueue<number>((item) => expired.push(item));
    const base = Date.now() + 20;
    const entries = Array.from({ length: 500 }, (_, i) => queue.set(i, base + ((i * 7919) % 50)));
    for (let i = 0; i < 500; i += 3) {
      queue.remove(entries[i]!);
    }
    for (let i = 1; i < 500; i += 5) {
      if (i % 3 !== 0) {
        queue.set(i, base + ((i * 104_729) % 50), entries[i]);
      }
    }
    // A removed deadline given to set() again is a new entry: that one comes back.
    entries[6] = queue.set(6, base + 25, entries[6]);
    await sleep(120);
    assert.equal(expired.length, 500 - 167 + 1);
    assert.ok(expired.includes(6));
    const deadlines = expired.map((item) => entries[item]!.at);
    assert.deepEqual(
      deadlines,
      [...deadlines].sort((x, y) => x - y),
      'expired in deadline order',
    );
    assert.equal(queue.size, 0);
  });
});
