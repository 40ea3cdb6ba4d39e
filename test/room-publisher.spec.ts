import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryBroker } from '../src/broker/memory-broker.js';
import type { Connection } from '../src/gateway/connection.js';
import { roomChannel } from '../src/rooms/cluster-envelope.js';
import { RoomPublisher, type RoomPublisherHost } from '../src/rooms/room-publisher.js';
import { PushFrame } from '../src/transport/push-frame.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const HISTORY = { size: 10, ttlMs: 60_000 };
/** An instance id as the hub makes them (its length is part of the cluster envelope). */
const INSTANCE = randomUUID();

/** A publisher whose host has the given local members in every room. */
function publisherWith(broker: MemoryBroker, members: Set<Connection>): RoomPublisher {
  const host: RoomPublisherHost = { members: () => members, deliver: () => undefined, delivered: () => undefined };
  return new RoomPublisher(broker, INSTANCE, HISTORY, undefined, host);
}

describe('room publishes that leave their sender out', () => {
  it('the echo from the broker leaves out the sender of the publish', async () => {
    const broker = new MemoryBroker();
    const echoes: string[] = [];
    await broker.start(INSTANCE, (_channel, payload) => echoes.push(payload));
    await broker.subscribe(roomChannel('lobby'));
    const sender = { name: 'sender' } as unknown as Connection;
    const publisher = publisherWith(broker, new Set([sender]));

    await publisher.emit('lobby', PushFrame.of({ event: 'said', room: 'lobby', data: 'hi' }), sender);

    assert.equal(echoes.length, 1);
    assert.equal(publisher.push(echoes[0])?.except, sender);
    assert.equal(publisher.push(echoes[0])?.except, undefined, 'an exclusion is used once');
  });

  it('a publish whose echo never comes does not keep its sender alive', async () => {
    const broker = new MemoryBroker();
    await broker.start(INSTANCE, () => undefined);
    // The room's channel is not subscribed (its subscription dropped, say): no echo comes back.
    const members = new Set<Connection>();
    const publisher = publisherWith(broker, members);
    const gone = await (async () => {
      const sender = { name: 'sender', buffers: Buffer.alloc(1024) } as unknown as Connection;
      members.add(sender);
      for (let i = 0; i < 3; i++) {
        await publisher.emit('lobby', PushFrame.of({ event: 'said', room: 'lobby', data: i }), sender);
      }
      members.delete(sender);
      return new WeakRef(sender);
    })();

    await turn();
    collectGarbage();

    assert.equal(gone.deref(), undefined, 'the sender of the lost echoes was kept');
  });
});
