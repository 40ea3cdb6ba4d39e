import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { HeartbeatClock } from '../src/heartbeat/heartbeat-clock.js';
import { HeartbeatEntry, HeartbeatMonitor } from '../src/heartbeat/heartbeat-monitor.js';
import { FakeClock } from './support/fake-clock.js';

/** A peer that records what the monitor did to it, and when. */
class RecordingPeer extends HeartbeatEntry {
  readonly pings: number[] = [];
  terminatedAt: number | undefined;
  /** Set to answer pings: the pong arrives `pongDelayMs` later. */
  answer: ((entry: HeartbeatEntry) => void) | undefined;

  constructor(private readonly clock: FakeClock) {
    super();
  }

  heartbeatPing(): void {
    this.pings.push(this.clock.now());
    this.answer?.(this);
  }

  heartbeatTimeout(): void {
    assert.equal(this.terminatedAt, undefined, 'terminated twice');
    this.terminatedAt = this.clock.now();
  }
}

describe('HeartbeatMonitor (fake clock, no sockets)', () => {
  const timing = { intervalMs: 200, timeoutMs: 100 };
  let clock: FakeClock;
  let monitor: HeartbeatMonitor;

  function watch(): RecordingPeer {
    const peer = new RecordingPeer(clock);
    monitor.add(peer);
    return peer;
  }

  beforeEach(() => {
    clock = new FakeClock();
    monitor = new HeartbeatMonitor(timing, clock);
  });

  it('sweeps every quarter of the shorter duration', () => {
    assert.equal(monitor.sweepMs, 25);
    assert.equal(new HeartbeatMonitor({ intervalMs: 25_000, timeoutMs: 10_000 }, clock).sweepMs, 2_500);
  });

  it('pings a silent peer after the interval, and terminates it after interval + timeout, never early', () => {
    const peer = watch();
    clock.advance(199);
    assert.deepEqual(peer.pings, []);
    clock.advance(100);
    assert.equal(peer.pings.length, 1);
    assert.ok(peer.pings[0]! >= 200 && peer.pings[0]! <= 200 + monitor.sweepMs, `pinged at ${peer.pings[0]}`);
    assert.equal(peer.terminatedAt, undefined);
    clock.advance(100);
    assert.ok(peer.terminatedAt !== undefined, 'not terminated');
    assert.ok(peer.terminatedAt >= 300 && peer.terminatedAt <= 300 + monitor.sweepMs, `terminated at ${peer.terminatedAt}`);
    assert.equal(monitor.reaped, 1);
    assert.equal(monitor.size, 0);
  });

  it('keeps a silent peer that answers every ping, over many intervals', () => {
    const peer = watch();
    peer.answer = (entry) => (entry.active = true);
    clock.advance(100 * timing.intervalMs);
    assert.equal(peer.terminatedAt, undefined);
    // A ping per interval of silence, counted from the sweep that saw the last pong.
    assert.ok(peer.pings.length >= 85, `only ${peer.pings.length} pings`);
    // Pinged once per interval of silence, not once per sweep.
    for (let i = 1; i < peer.pings.length; i++) {
      assert.ok(peer.pings[i]! - peer.pings[i - 1]! >= timing.intervalMs);
    }
    assert.equal(monitor.reaped, 0);
  });

  it('neither pings nor terminates a peer that keeps sending', () => {
    const peer = watch();
    for (let t = 0; t < 50 * timing.intervalMs; t += 150) {
      peer.active = true;
      clock.advance(150);
    }
    assert.deepEqual(peer.pings, []);
    assert.equal(peer.terminatedAt, undefined);
  });

  it('terminates a peer that went silent after being busy, counting from its last activity', () => {
    const peer = watch();
    for (let t = 0; t < 1000; t += 150) {
      peer.active = true;
      clock.advance(150);
    }
    peer.active = true;
    const lastActivity = clock.now();
    clock.advance(1000);
    assert.ok(peer.terminatedAt !== undefined);
    const silence = peer.terminatedAt - lastActivity;
    assert.ok(silence >= 300 && silence <= 300 + monitor.sweepMs, `cut after ${silence} ms of silence`);
  });

  it('uses one timer for 5,000 peers, and none once they are gone', () => {
    assert.equal(clock.timers, 0);
    assert.equal(monitor.running, false);
    const peers = Array.from({ length: 5000 }, () => watch());
    assert.equal(clock.timers, 1);
    assert.equal(monitor.running, true);
    // Half answer their pings, half are dead.
    peers.forEach((peer, index) => {
      if (index % 2 === 0) {
        peer.answer = (entry) => (entry.active = true);
      }
    });
    clock.advance(1000);
    assert.equal(peers.filter((peer) => peer.terminatedAt !== undefined).length, 2500);
    assert.equal(monitor.reaped, 2500);
    assert.equal(monitor.size, 2500);
    assert.equal(clock.timers, 1);
    for (const peer of peers) {
      monitor.remove(peer);
    }
    assert.equal(monitor.size, 0);
    assert.equal(clock.timers, 0);
    assert.equal(monitor.running, false);
    watch();
    assert.equal(clock.timers, 1);
  });

  it('stops its timer once the last peer is reaped', () => {
    watch();
    clock.advance(400);
    assert.equal(monitor.size, 0);
    assert.equal(clock.timers, 0);
  });

  it('ignores the removal of a peer it already reaped', () => {
    const dead = watch();
    const alive = watch();
    alive.answer = (entry) => (entry.active = true);
    clock.advance(400);
    assert.notEqual(dead.terminatedAt, undefined);
    monitor.remove(dead);
    assert.equal(monitor.size, 1);
    assert.equal(monitor.reaped, 1);
  });

  describe('with a clock of fractional milliseconds, swept by hand', () => {
    let time = 0;
    const manual: HeartbeatClock = { now: () => time, setInterval: () => 1, clearInterval: () => undefined };

    function sweepAt(at: number, handMonitor: HeartbeatMonitor): void {
      time = at;
      handMonitor.sweep();
    }

    it('never cuts a peer before interval + timeout of silence, whatever the fractions', () => {
      time = 0;
      const handMonitor = new HeartbeatMonitor(timing, manual);
      const peer = new RecordingPeer(clock);
      handMonitor.add(peer);
      sweepAt(10.9, handMonitor); // seen at 10.9
      sweepAt(310.5, handMonitor); // silent for 299.6 ms: pinged, not cut
      assert.equal(peer.pings.length, 1);
      assert.equal(peer.terminatedAt, undefined, 'cut after 299.6 ms of silence');
      sweepAt(310.9, handMonitor); // silent for 300 ms: whole-ms rounding may leave it for a sweep
      sweepAt(312.9, handMonitor); // silent for 302 ms
      assert.notEqual(peer.terminatedAt, undefined, 'not cut 2 ms after its time');
    });

    it('keeps its times small integers as the process runs for weeks, and its timing with them', () => {
      time = 0;
      const handMonitor = new HeartbeatMonitor(timing, manual);
      const quiet = new RecordingPeer(clock);
      const busy = new RecordingPeer(clock);
      handMonitor.add(quiet);
      handMonitor.add(busy);
      const weeks = 4 * 7 * 24 * 3600 * 1000; // past 2^31 ms
      sweepAt(weeks + 0.25, handMonitor); // both seen
      assert.ok(Number.isInteger(quiet.seenAt) && Math.abs(quiet.seenAt) < 2 ** 30, `seenAt ${quiet.seenAt}`);
      busy.active = true;
      sweepAt(weeks + 250.25, handMonitor);
      assert.equal(quiet.pings.length, 1, 'pinged after 250 ms of silence');
      busy.active = true;
      sweepAt(weeks + 299.75, handMonitor);
      assert.equal(quiet.terminatedAt, undefined, 'cut after 299.5 ms of silence');
      busy.active = true;
      sweepAt(weeks + 302.25, handMonitor);
      assert.notEqual(quiet.terminatedAt, undefined, 'not cut 2 ms after its time');
      assert.equal(busy.terminatedAt, undefined);
      for (const peer of [quiet, busy]) {
        assert.ok(Number.isInteger(peer.seenAt) && Math.abs(peer.seenAt) < 2 ** 30, `seenAt ${peer.seenAt}`);
        assert.ok(Number.isInteger(peer.pingedAt) && Math.abs(peer.pingedAt) <= 2 ** 30, `pingedAt ${peer.pingedAt}`);
      }
    });
  });
});
