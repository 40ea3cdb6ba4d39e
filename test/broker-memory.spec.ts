import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../src/index.js';
import { brokerContract } from '../src/testing/index.js';

brokerContract('MemoryBroker', async () => {
  const bus = new MemoryBus();
  return { make: () => new MemoryBroker({ bus }) };
});

describe('MemoryBroker history', () => {
  it('does not keep the expired histories of rooms read once (every join reads one, of any name)', async () => {
    const bus = new MemoryBus();
    const broker = new MemoryBroker({ bus });
    await broker.start('instance', () => undefined);
    const policy = { size: 10, ttlMs: 30 };
    const readRooms = async (prefix: string): Promise<void> => {
      for (let i = 0; i < 3000; i++) {
        await broker.history(`r:${prefix}-${i}`, undefined, policy);
      }
    };
    await readRooms('first');
    await new Promise((resolve) => setTimeout(resolve, policy.ttlMs + 20));
    await readRooms('second');
    await new Promise((resolve) => setTimeout(resolve, policy.ttlMs + 20));
    await readRooms('third');
    // Only the histories still alive, and those expired since the last sweep: never all 9,000.
    assert.ok(bus.histories.size <= 6000, `${bus.histories.size} histories kept`);
    await broker.close();
  });
});
