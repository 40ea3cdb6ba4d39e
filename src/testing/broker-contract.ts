import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { BrokerUnavailableError } from '../broker/broker-errors.js';
import type { HistoryPolicy, RealtimeBroker, StreamPosition } from '../broker/broker.interface.js';

/** Makes brokers that act as instances of one application (they see each other). */
export interface BrokerFactory {
  /** A new broker of the same application as the others of this test. */
  make(): RealtimeBroker;
}

/** A started broker and what it has received. */
interface Instance {
  broker: RealtimeBroker;
  received: [string, string][];
  /** The positions that came with the payloads, in arrival order (undefined for plain ones). */
  positions: (StreamPosition | undefined)[];
  /** Resolves once `count` payloads have arrived in all. */
  receivedCount(count: number): Promise<[string, string][]>;
}

/**
 * The broker contract (see `RealtimeBroker`), run against every implementation. `factory`
 * is called before each test, so that each test gets an isolated application.
 */
export function brokerContract(name: string, factory: () => Promise<BrokerFactory>): void {
  describe(`broker contract: ${name}`, () => {
    const started: RealtimeBroker[] = [];

    async function instance(brokers: BrokerFactory): Promise<Instance> {
      const broker = brokers.make();
      const received: [string, string][] = [];
      const positions: (StreamPosition | undefined)[] = [];
      const waiters: (() => void)[] = [];
      await broker.start(randomUUID(), (channel, payload, position) => {
        received.push([channel, payload]);
        positions.push(position);
        waiters.splice(0).forEach((wake) => wake());
      });
      started.push(broker);
      return {
        broker,
        received,
        positions,
        async receivedCount(count) {
          const deadline = Date.now() + 5000;
          while (received.length < count) {
            if (Date.now() > deadline) {
              throw new Error(`expected ${count} payloads, got ${received.length}`);
            }
            await new Promise<void>((resolve) => {
              waiters.push(resolve);
              setTimeout(resolve, 50);
            });
          }
          return received;
        },
      };
    }

    afterEach(async () => {
      await Promise.all(started.splice(0).map((broker) => broker.close()));
    });

    it('delivers a payload once to every subscribed instance, the publisher included', async () => {
      const brokers = await factory();
      const [a, b, c] = [await instance(brokers), await instance(brokers), await instance(brokers)];
      await a.broker.subscribe('r:lobby');
      await b.broker.subscribe('r:lobby');
      // Resolves once the broker took it: with no history kept for the channel, without a position.
      assert.equal(await a.broker.publish('r:lobby', 'hello'), undefined);
      assert.deepEqual(await b.receivedCount(1), [['r:lobby', 'hello']]);
      assert.deepEqual(await a.receivedCount(1), [['r:lobby', 'hello']]);
      // A marker on a channel c listens to proves c had time to receive, and got nothing else.
      await c.broker.subscribe('r:marker');
      await a.broker.publish('r:marker', 'marker');
      assert.deepEqual(await c.receivedCount(1), [['r:marker', 'marker']]);
      assert.equal(a.received.length, 1);
      assert.equal(b.received.length, 1);
    });

    it('stops delivering after unsubscribe', async () => {
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await b.broker.subscribe('r:x');
      await b.broker.subscribe('r:y');
      await a.broker.publish('r:x', '1');
      await b.receivedCount(1);
      await b.broker.unsubscribe('r:x');
      await a.broker.publish('r:x', '2');
      await a.broker.publish('r:y', '3');
      assert.deepEqual(await b.receivedCount(2), [
        ['r:x', '1'],
        ['r:y', '3'],
      ]);
    });

    it('ends in the state the last call asked for when subscribe and unsubscribe overlap', async () => {
      // A room joined and left at once (or left and joined again) makes such calls without
      // waiting for each other: the last one must win, whatever the first still has in flight.
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await b.broker.subscribe('r:rejoined');
      await Promise.all([b.broker.subscribe('r:left'), b.broker.unsubscribe('r:left')]);
      await Promise.all([b.broker.unsubscribe('r:rejoined'), b.broker.subscribe('r:rejoined')]);
      await Promise.all([b.broker.subscribe('r:flip'), b.broker.unsubscribe('r:flip'), b.broker.subscribe('r:flip')]);
      await a.broker.publish('r:left', 'lost');
      await a.broker.publish('r:rejoined', 'rejoined');
      await a.broker.publish('r:flip', 'flip');
      // A later marker on a channel b listens to proves b had time to receive the others.
      await b.broker.subscribe('r:marker');
      await a.broker.publish('r:marker', 'marker');
      assert.deepEqual(await b.receivedCount(3), [
        ['r:rejoined', 'rejoined'],
        ['r:flip', 'flip'],
        ['r:marker', 'marker'],
      ]);
    });

    it('keeps publish order, exactly once, over 1,000 payloads', async () => {
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await b.broker.subscribe('r:ordered');
      // Published without waiting for each other, as a busy instance does.
      await Promise.all(Array.from({ length: 1000 }, (_, i) => a.broker.publish('r:ordered', String(i))));
      const received = await b.receivedCount(1000);
      assert.deepEqual(
        received.map(([, payload]) => Number(payload)),
        Array.from({ length: 1000 }, (_, i) => i),
      );
    });

    it('carries any text payload unchanged', async () => {
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await b.broker.subscribe('u:ünïcødé user');
      const payload = `{"event":"message","data":"émoji 🎉, newline\\n, quote \\"", "x": "${'z'.repeat(10_000)}"}`;
      await a.broker.publish('u:ünïcødé user', payload);
      assert.deepEqual(await b.receivedCount(1), [['u:ünïcødé user', payload]]);
    });

    it('shares presence across instances, per instance', async () => {
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await a.broker.addPresence('room', 'alice');
      await b.broker.addPresence('room', 'bob');
      await b.broker.addPresence('room', 'alice');
      assert.deepEqual((await a.broker.presence('room')).sort(), ['alice', 'bob']);
      assert.deepEqual((await b.broker.presence('room')).sort(), ['alice', 'bob']);
      await a.broker.removePresence('room', 'alice');
      // b still has alice.
      assert.deepEqual((await a.broker.presence('room')).sort(), ['alice', 'bob']);
      await b.broker.removePresence('room', 'alice');
      assert.deepEqual(await a.broker.presence('room'), ['bob']);
      assert.deepEqual(await a.broker.presence('empty'), []);
    });

    it("drops an instance's presence when it closes", async () => {
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await a.broker.addPresence('room', 'alice');
      await b.broker.addPresence('room', 'bob');
      await a.broker.close();
      assert.deepEqual(await b.broker.presence('room'), ['bob']);
    });

    it('stops delivering to an instance once it closes, and goes on delivering to the others on its channels', async () => {
      const brokers = await factory();
      const [a, b] = [await instance(brokers), await instance(brokers)];
      await a.broker.subscribe('r:z');
      await b.broker.subscribe('r:z');
      await b.broker.publish('r:z', 'before');
      await a.receivedCount(1);
      await a.broker.close();
      await b.broker.publish('r:z', 'after');
      assert.deepEqual(await b.receivedCount(2), [
        ['r:z', 'before'],
        ['r:z', 'after'],
      ]);
      assert.deepEqual(a.received, [['r:z', 'before']]);
    });

    it('reports ok, then closed', async () => {
      const brokers = await factory();
      const a = await instance(brokers);
      assert.equal(a.broker.health().status, 'ok');
      await a.broker.close();
      assert.equal(a.broker.health().status, 'closed');
    });

    const history: HistoryPolicy = { size: 5, ttlMs: 60_000 };

    it('gives consecutive offsets to concurrent publishers on 3 instances, and delivers in offset order', async () => {
      const brokers = await factory();
      const all = [await instance(brokers), await instance(brokers), await instance(brokers)];
      await Promise.all(all.map(({ broker }) => broker.subscribe('r:h')));
      const publishes = Array.from({ length: 60 }, (_, i) => all[i % 3].broker.publish('r:h', `m${i}`, { size: 100, ttlMs: 60_000 }));
      const positions = await Promise.all(publishes);
      const epoch = positions[0]!.epoch;
      assert.ok(positions.every((position) => position?.epoch === epoch));
      assert.deepEqual(
        positions.map((position) => position!.offset).sort((a, b) => a - b),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      for (const one of all) {
        await one.receivedCount(60);
        // Every subscriber sees offsets 1..60 in order, each with the payload that got it.
        assert.deepEqual(
          one.positions.map((position) => position?.offset),
          Array.from({ length: 60 }, (_, i) => i + 1),
        );
        const payloadAt = new Map(positions.map((position, i) => [position!.offset, `m${i}`]));
        assert.deepEqual(
          one.received.map(([, payload]) => payload),
          one.positions.map((position) => payloadAt.get(position!.offset)),
        );
      }
    });

    it('reads history after a position while it is all kept, and says when it is not', async () => {
      const brokers = await factory();
      const a = await instance(brokers);
      const fresh = await a.broker.history('r:kept', undefined, history);
      assert.deepEqual(fresh, { position: { offset: 0, epoch: fresh.position.epoch }, complete: true, entries: [] });
      assert.match(fresh.position.epoch, /^[A-Za-z0-9_-]{1,64}$/);
      for (let i = 1; i <= 8; i++) {
        assert.deepEqual(await a.broker.publish('r:kept', `p${i}`, history), { offset: i, epoch: fresh.position.epoch });
      }
      const epoch = fresh.position.epoch;
      const after5 = await a.broker.history('r:kept', { offset: 5, epoch }, history);
      assert.deepEqual(after5, {
        position: { offset: 8, epoch },
        complete: true,
        entries: [
          { offset: 6, payload: 'p6' },
          { offset: 7, payload: 'p7' },
          { offset: 8, payload: 'p8' },
        ],
      });
      // Size 5: at least 4..8 are kept, so after 3 is complete.
      assert.deepEqual(
        (await a.broker.history('r:kept', { offset: 3, epoch }, history)).entries.map((entry) => entry.offset),
        [4, 5, 6, 7, 8],
      );
      assert.equal((await a.broker.history('r:kept', { offset: 8, epoch }, history)).complete, true);
      assert.equal((await a.broker.history('r:kept', { offset: 9, epoch }, history)).complete, false);
      assert.equal((await a.broker.history('r:kept', { offset: 7, epoch: 'another' }, history)).complete, false);
      assert.deepEqual((await a.broker.history('r:kept', undefined, history)).position, { offset: 8, epoch });
    });

    it('keeps at least the history size, and says a position is lost once its successors were trimmed', async () => {
      const brokers = await factory();
      const a = await instance(brokers);
      // A broker may keep more than the size (Redis trims whole stream nodes): 1,000 messages
      // for a size of 5 are past any such slack.
      const publishes: Promise<unknown>[] = [];
      for (let i = 1; i <= 1000; i++) {
        publishes.push(a.broker.publish('r:trimmed', `p${i}`, history));
      }
      await Promise.all(publishes);
      const { epoch } = (await a.broker.history('r:trimmed', undefined, history)).position;
      assert.deepEqual(await a.broker.history('r:trimmed', { offset: 1, epoch }, history), {
        position: { offset: 1000, epoch },
        complete: false,
        entries: [],
      });
      const recent = await a.broker.history('r:trimmed', { offset: 995, epoch }, history);
      assert.deepEqual(
        recent.entries.map((entry) => entry.payload),
        ['p996', 'p997', 'p998', 'p999', 'p1000'],
      );
    });

    it("starts a new epoch, and offsets from 1, once a channel's history expired", async () => {
      const brokers = await factory();
      const a = await instance(brokers);
      const short: HistoryPolicy = { size: 5, ttlMs: 50 };
      const first = await a.broker.publish('r:short', 'one', short);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = await a.broker.publish('r:short', 'two', short);
      assert.equal(first!.offset, 1);
      assert.equal(second!.offset, 1);
      assert.notEqual(second!.epoch, first!.epoch);
      assert.equal((await a.broker.history('r:short', first, short)).complete, false);
    });

    it('refuses a publish once closed, with BrokerUnavailableError rather than dropping it', async () => {
      const brokers = await factory();
      const a = await instance(brokers);
      await a.broker.close();
      await assert.rejects(a.broker.publish('r:late', 'late'), (error: unknown) => {
        assert.ok(error instanceof BrokerUnavailableError, `got ${String(error)}`);
        assert.equal(error.code, 'UNAVAILABLE');
        return true;
      });
    });
  });
}
