import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { RedisBroker, RedisBrokerOptions } from '../../src/redis.js';
import { until } from './until.js';

/**
 * Two brokers on one Redis (a server or a cluster, read through `inspector`), one with a
 * 300 ms presence TTL and one with the default (30 s), in one room: the room key's expiry
 * is set when the key is new, moved later by the longer TTL, and never moved earlier by
 * the shorter one, neither when it adds an entry nor when it refreshes its entries.
 */
export async function presenceKeyExpiryOnlyGrows(
  make: (options: RedisBrokerOptions) => RedisBroker,
  inspector: Redis | Cluster,
): Promise<void> {
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  const key = `${keyPrefix}presence:lobby`;
  const short = make({ keyPrefix, presenceTtlMs: 300 });
  const long = make({ keyPrefix });
  try {
    await short.start('short', () => undefined);
    await long.start('long', () => undefined);

    await short.addPresence('lobby', 'dave');
    const fresh = await inspector.pttl(key);
    assert.ok(fresh > 0 && fresh <= 600, `a new key's expiry: ${fresh} ms`);

    await long.addPresence('lobby', 'alice');
    const extended = await inspector.pttl(key);
    assert.ok(extended > 50_000, `after the 30 s instance's add: ${extended} ms`);

    await short.addPresence('lobby', 'erin');
    const afterAdd = await inspector.pttl(key);
    assert.ok(afterAdd > 50_000, `after the 300 ms instance's add: ${afterAdd} ms`);

    // The 300 ms instance refreshes every 100 ms: two moves of dave's score are two refreshes.
    const scores: string[] = [];
    await until(async () => {
      const score = (await inspector.zscore(key, 'short|dave')) ?? '';
      if (scores.at(-1) !== score) {
        scores.push(score);
      }
      return scores.length >= 3;
    }, "two refreshes of the 300 ms instance's entries");
    const afterRefresh = await inspector.pttl(key);
    assert.ok(afterRefresh > 50_000, `after the 300 ms instance's refreshes: ${afterRefresh} ms`);
    assert.deepEqual((await long.presence('lobby')).sort(), ['alice', 'dave', 'erin']);
  } finally {
    await Promise.all([short.close(), long.close()]);
  }
}
