import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryWaiters } from '../src/rooms/delivery-waiters.js';

/** Whether `promise` has settled within a few turns. */
async function settled(promise: Promise<void> | undefined): Promise<boolean> {
  let done = false;
  void promise?.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return promise === undefined || done;
}

describe('DeliveryWaiters: a room publish waits for its own delivery here, boundedly', () => {
  it('goes on once the room reached its offset in its epoch, not for another epoch or an earlier offset', async () => {
    const waiters = new DeliveryWaiters();
    const waiting = waiters.wait('r', { offset: 5, epoch: 'e2' }, 60_000, 'e1', 9);
    assert.equal(await settled(waiting), false);
    waiters.reached('r', 'e1', 10); // the stream still on the older epoch
    waiters.reached('r', 'e2', 4);
    waiters.reached('other', 'e2', 5);
    assert.equal(await settled(waiting), false);
    waiters.reached('r', 'e2', 5);
    assert.equal(await settled(waiting), true);
  });

  it('does not wait for what was delivered already, and lets go when the room closes here or the time is up', async () => {
    const waiters = new DeliveryWaiters();
    assert.equal(waiters.wait('r', { offset: 3, epoch: 'e' }, 60_000, 'e', 3), undefined);
    const closing = waiters.wait('r', { offset: 4, epoch: 'e' }, 60_000, 'e', 3);
    waiters.closed('r');
    assert.equal(await settled(closing), true);
    const started = performance.now();
    const alive = setTimeout(() => undefined, 1000); // the wait's timer is unref'd (it must not hold a server's exit): this one keeps the test's loop running
    await waiters.wait('r', { offset: 4, epoch: 'e' }, 50, 'e', 3);
    clearTimeout(alive);
    assert.ok(performance.now() - started >= 45);
  });
});
