import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../src/broker/memory-broker.js';
import { Connection } from '../src/gateway/connection.js';
import type { GatewaySettings } from '../src/gateway/gateway-settings.js';
import type { RealtimeTransport } from '../src/transport/transport.interface.js';
import { UserChannels } from '../src/rooms/user-channels.js';

/** A connection with no socket behind it: UserChannels only reads and sets its `user`. */
function bareConnection(): Connection {
  return new Connection({}, {} as RealtimeTransport, undefined, {} as GatewaySettings, new Set());
}

describe('UserChannels: the user channel is held by connections and by upgrades under way', () => {
  async function channels(): Promise<{ users: UserChannels; subscribed: (sub: string) => boolean; calls: string[] }> {
    const bus = new MemoryBus();
    const broker = new MemoryBroker({ bus });
    await broker.start('instance', () => undefined);
    const calls: string[] = [];
    const users = new UserChannels(broker, async (work, what) => {
      calls.push(what);
      await work;
    });
    return { users, subscribed: (sub) => bus.channels.has(`u:${sub}`), calls };
  }

  it('subscribes with the first hold and unsubscribes when the last connection or waiting hold is gone', async () => {
    const { users, subscribed, calls } = await channels();
    const [a, b] = [bareConnection(), bareConnection()];
    await users.hold('alice');
    assert.equal(subscribed('alice'), true);
    users.add(a, 'alice');
    await users.hold('alice'); // a second upgrade of alice's, under way
    users.remove(a);
    assert.equal(subscribed('alice'), true, 'the waiting hold keeps the channel');
    users.add(b, 'alice');
    assert.deepEqual([...users.connectionsOf('alice')], [b]);
    await users.hold('alice'); // a third upgrade, which fails
    users.release('alice');
    assert.equal(subscribed('alice'), true, "b's hold keeps the channel");
    users.remove(b);
    assert.equal(subscribed('alice'), false);
    assert.deepEqual([...users.connectionsOf('alice')], []);
    assert.deepEqual(calls, ['subscribe', 'unsubscribe'], 'one subscription for the whole time alice was held');
  });

  it('ignores a release without a waiting hold, and a connection removed twice', async () => {
    const { users, subscribed, calls } = await channels();
    const a = bareConnection();
    await users.hold('bob');
    users.add(a, 'bob');
    users.release('bob'); // nothing waits: a's hold is not the caller's to release
    assert.equal(subscribed('bob'), true);
    users.remove(a);
    users.remove(a);
    assert.equal(subscribed('bob'), false);
    assert.deepEqual(calls, ['subscribe', 'unsubscribe']);
  });

  it('unsubscribes when a waiting hold is released with no connection, even while its subscribe is under way', async () => {
    const { users, subscribed, calls } = await channels();
    await users.hold('carol'); // an upgrade that is then refused
    users.release('carol');
    assert.equal(subscribed('carol'), false);
    const pending = users.hold('dave'); // refused before its subscription is made
    users.release('dave');
    await pending;
    assert.equal(subscribed('dave'), false);
    await users.hold('dave'); // the next upgrade subscribes again
    assert.equal(subscribed('dave'), true);
    assert.deepEqual(calls, ['subscribe', 'unsubscribe', 'subscribe', 'unsubscribe', 'subscribe']);
  });
});
