import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { BrokerResilience, BrokerTimeoutError, BrokerUnavailableError, type ResilientBackend } from '../src/index.js';
import { until } from './support/until.js';

/**
 * A backend the test drives by hand: whether it is connected, how it answers. The Redis
 * broker's own tests run the same wrapper against a real, killed and paused redis-server;
 * these pin the rules that are hard to provoke there.
 */
class ScriptedBackend implements ResilientBackend {
  isConnected = false;
  /** How the next sends and probes answer: at once, with an error, never, or with a synchronous throw (against the interface). */
  answer: 'ok' | 'error' | 'never' | 'throw' = 'ok';
  /** connected() throws (against the interface). */
  connectedThrows = false;
  readonly sent: string[] = [];
  restores = 0;

  connected(): boolean {
    if (this.connectedThrows) {
      throw new Error('connected() threw');
    }
    return this.isConnected;
  }

  probe(): Promise<unknown> {
    return this.reply('PONG');
  }

  restore(): Promise<void> {
    this.restores++;
    return Promise.resolve();
  }

  send(channel: string, payload: string): Promise<undefined> {
    return this.reply(undefined).then(() => {
      this.sent.push(`${channel}=${payload}`);
      return undefined;
    });
  }

  private reply<T>(value: T): Promise<T> {
    if (this.answer === 'never') {
      return new Promise<T>(() => undefined);
    }
    if (this.answer === 'throw') {
      throw new Error('the backend threw');
    }
    // An error whose text says "timed out" is still an answer: only the wrapper's own deadline is a stall.
    return this.answer === 'error' ? Promise.reject(new Error('ERR command timed out in the script')) : Promise.resolve(value);
  }
}

const quiet = { log: () => undefined, warn: () => undefined };

describe('BrokerResilience', () => {
  const made: BrokerResilience[] = [];

  afterEach(() => made.splice(0).forEach((resilience) => resilience.close()));

  function resilience(backend: ScriptedBackend, maxPending = 3): BrokerResilience {
    const wrapper = new BrokerResilience(backend, { name: 'Test', maxPending, commandTimeoutMs: 50, healthCheckMs: 20, logger: quiet });
    made.push(wrapper);
    return wrapper;
  }

  it('keeps publishes while away, restores before it flushes them in order, and only then reports ok', async () => {
    const backend = new ScriptedBackend();
    const wrapper = resilience(backend);
    wrapper.down('not yet');
    const kept = [wrapper.publish('c', '1'), wrapper.publish('c', '2'), wrapper.publish('c', '3')];
    await assert.rejects(wrapper.publish('c', '4'), BrokerUnavailableError);
    assert.equal(wrapper.dropped, 1);
    assert.deepEqual(wrapper.health('test'), { type: 'test', status: 'degraded', detail: 'not yet' });
    backend.isConnected = true;
    void wrapper.up();
    assert.deepEqual(await Promise.all(kept), [undefined, undefined, undefined]);
    assert.equal(backend.restores, 1);
    assert.deepEqual(backend.sent, ['c=1', 'c=2', 'c=3']);
    assert.equal(wrapper.state, 'ok');
  });

  it('counts only its own deadline as a stall: an error answer, whatever its text, is not one', async () => {
    const backend = new ScriptedBackend();
    backend.isConnected = true;
    const wrapper = resilience(backend);
    void wrapper.up();
    await until(() => wrapper.state === 'ok', 'ok');
    backend.answer = 'error';
    await assert.rejects(wrapper.publish('c', 'refused'), BrokerUnavailableError);
    assert.equal(wrapper.state, 'ok');
    assert.equal(wrapper.answering, true);

    backend.answer = 'never';
    await assert.rejects(
      wrapper.attempt('probe', () => backend.probe()),
      (error: unknown) => error instanceof BrokerTimeoutError && error.command === 'probe' && error.timeoutMs === 50,
    );
    assert.equal(wrapper.state, 'degraded');
    assert.equal(wrapper.answering, false);
    assert.match(wrapper.health('test').detail ?? '', /probe failed: probe timed out after 50 ms/);
    // The stall watch notices the answers coming back, restores, and reports ok again.
    backend.answer = 'ok';
    await until(() => wrapper.state === 'ok', 'ok after the stall', 2000);
    assert.ok(backend.restores >= 2, `${backend.restores} restores`);
  });

  it('refuses every failed publish of a connected backend, and logs a few of them, not each', async () => {
    const backend = new ScriptedBackend();
    backend.isConnected = true;
    const lines: string[] = [];
    const wrapper = new BrokerResilience(backend, {
      name: 'Test',
      maxPending: 1000,
      commandTimeoutMs: 50,
      healthCheckMs: 1000,
      logger: { log: () => undefined, warn: (line: string) => lines.push(line) },
    });
    made.push(wrapper);
    await wrapper.up();
    backend.answer = 'error'; // a cluster node that is down fails its slots' commands, one by one
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => wrapper.publish('c', String(i))));
    assert.equal(results.filter((result) => result.status === 'rejected' && result.reason instanceof BrokerUnavailableError).length, 200);
    assert.equal(wrapper.state, 'ok');
    assert.deepEqual(
      lines,
      Array.from({ length: 5 }, () => 'publish failed: ERR command timed out in the script'),
    );
  });

  it('takes a publish that fails once the backend is no longer connected for an outage: refused, and degraded', async () => {
    const backend = new ScriptedBackend();
    backend.isConnected = true;
    const wrapper = resilience(backend);
    await wrapper.up();
    assert.equal(wrapper.state, 'ok');
    let fail!: (error: Error) => void;
    backend.send = () => new Promise((_, reject) => (fail = reject));
    const publish = wrapper.publish('c', 'in flight');
    // The connection drops with the publish in flight, and the publish fails after it.
    backend.isConnected = false;
    fail(new Error('Connection is closed.'));
    await assert.rejects(
      publish,
      (error: unknown) => error instanceof BrokerUnavailableError && /Connection is closed/.test(error.message),
    );
    assert.deepEqual(wrapper.health('test'), { type: 'test', status: 'degraded', detail: 'publish failed: Connection is closed.' });
    assert.equal(wrapper.answering, false);
  });

  it('takes a backend that throws instead of rejecting as one that failed: nothing leaks, nothing is made up, the process lives', async () => {
    const backend = new ScriptedBackend();
    backend.isConnected = true;
    const wrapper = resilience(backend, 2);
    await wrapper.up();
    backend.answer = 'throw';
    // More throwing publishes than maxPending: none of them stays counted as in flight.
    for (let i = 0; i < 4; i++) {
      await assert.rejects(wrapper.publish('c', `thrown ${i}`), BrokerUnavailableError);
    }
    await assert.rejects(
      wrapper.attempt('probe', () => backend.probe()),
      /the backend threw/,
    );
    backend.answer = 'ok';
    assert.equal(await wrapper.publish('c', 'taken'), undefined);
    assert.deepEqual(backend.sent, ['c=taken']);
    // Past the command deadline: the throw was an answer, not a stall.
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(wrapper.state, 'ok');
    // A connected() that throws, under the health check's timer: not connected, not fatal.
    wrapper.start();
    backend.connectedThrows = true;
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(wrapper.answering, false);
  });

  it('refuses what it kept when it closes, instead of leaving the publishers waiting', async () => {
    const backend = new ScriptedBackend();
    const wrapper = resilience(backend);
    wrapper.down('away');
    const kept = wrapper.publish('c', 'kept');
    wrapper.close();
    await assert.rejects(kept, BrokerUnavailableError);
    await assert.rejects(wrapper.publish('c', 'late'), BrokerUnavailableError);
    assert.equal(wrapper.state, 'closed');
  });
});
