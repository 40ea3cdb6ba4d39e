import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { addressKey, HandshakeRates } from '../src/limits/handshake-rates.js';
import { type Admission, clientAddress, ConnectionCounter, type LimitRefusal, type LimitSettings } from '../src/limits/limits.js';
import { checkRate, TokenBucket } from '../src/limits/token-bucket.js';
import { UserRates } from '../src/limits/user-rates.js';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { Reflector } from '@nestjs/core';
import { FramePolicy } from '../src/gateway/frame-policy.js';
import { Connection } from '../src/gateway/connection.js';
import { registerConnection } from '../src/gateway/connection-registry.js';
import type { GatewaySettings } from '../src/gateway/gateway-settings.js';
import type { RealtimeTransport } from '../src/transport/transport.interface.js';
import { LogThrottle } from '../src/limits/log-throttle.js';
import { RateLimit, RateLimitGuard } from '../src/limits/rate-limit.decorator.js';
import { RealtimeError } from '../src/realtime.errors.js';

/** Unit tests of the rate arithmetic, with exact numbers; time is passed in (ms). */

const T0 = 10_000;

describe('TokenBucket', () => {
  it('starts full: burst takes succeed, the next one fails', () => {
    const bucket = new TokenBucket({ perSecond: 2, burst: 3 }, T0);
    assert.deepEqual([bucket.take(T0), bucket.take(T0), bucket.take(T0), bucket.take(T0)], [true, true, true, false]);
  });

  it('refills perSecond tokens per second, exactly', () => {
    const bucket = new TokenBucket({ perSecond: 2, burst: 3 }, T0);
    for (let i = 0; i < 3; i++) bucket.take(T0);
    assert.equal(bucket.take(T0 + 499), false); // 0.998 token
    assert.equal(bucket.take(T0 + 500), true); // 0.998 + 0.002 = 1
    assert.equal(bucket.take(T0 + 500), false);
  });

  it('refills no further than burst', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 2 }, T0);
    bucket.take(T0);
    bucket.take(T0);
    assert.equal(bucket.msUntilFull(T0 + 60_000), 0);
    assert.deepEqual([bucket.take(T0 + 60_000), bucket.take(T0 + 60_000), bucket.take(T0 + 60_000)], [true, true, false]);
  });

  it('a clock that goes back takes nothing and refills nothing', () => {
    const bucket = new TokenBucket({ perSecond: 1, burst: 1 }, T0);
    assert.equal(bucket.take(T0 - 500), true);
    assert.equal(bucket.take(T0 + 999), false);
    assert.equal(bucket.take(T0 + 1000), true);
  });

  it('msUntilFull: the time the missing tokens take to refill', () => {
    const bucket = new TokenBucket({ perSecond: 2, burst: 4 }, T0);
    assert.equal(bucket.msUntilFull(T0), 0);
    bucket.take(T0);
    bucket.take(T0);
    assert.equal(bucket.msUntilFull(T0), 1000);
    assert.equal(bucket.msUntilFull(T0 + 250), 750);
    assert.equal(bucket.msUntilFull(T0 - 100), 1000); // before the last update: no refill
    assert.equal(bucket.msUntilFull(T0 + 1000), 0);
    assert.equal(bucket.msUntilFull(T0 + 5000), 0);
  });

  it('msUntilFull scales with the rate', () => {
    const bucket = new TokenBucket({ perSecond: 4, burst: 1 }, T0);
    bucket.take(T0);
    assert.equal(bucket.msUntilFull(T0), 250);
    assert.equal(bucket.msUntilFull(T0 + 100), 150);
  });
});

describe('checkRate', () => {
  it('accepts usable rates', () => {
    for (const rate of [
      { perSecond: 1, burst: 1 },
      { perSecond: 0.5, burst: 1 },
      { perSecond: 1000, burst: 50 },
      { perSecond: 0.001, burst: 2000 }, // full again after 2e9 ms, within a timer's reach
    ]) {
      assert.doesNotThrow(() => checkRate('limits.x', rate), JSON.stringify(rate));
    }
  });

  it('refuses a rate that is not positive and finite, or a burst that is not a whole number >= 1', () => {
    for (const rate of [
      { perSecond: 0, burst: 1 },
      { perSecond: -1, burst: 1 },
      { perSecond: Number.NaN, burst: 1 },
      { perSecond: Number.POSITIVE_INFINITY, burst: 1 },
      { perSecond: 1, burst: 0 },
      { perSecond: 1, burst: -1 },
      { perSecond: 1, burst: 1.5 },
      { perSecond: 1, burst: Number.NaN },
      { perSecond: 1, burst: Number.POSITIVE_INFINITY },
      // A bucket is kept until full again, by a timer: a refill longer than a timer can wait is refused.
      { perSecond: 0.001, burst: 3000 },
      { perSecond: 5e-324, burst: 1 },
    ]) {
      assert.throws(
        () => checkRate('limits.perUser', rate),
        (error: unknown) => error instanceof TypeError && error.message.includes('limits.perUser'),
        JSON.stringify(rate),
      );
    }
  });
});

describe('UserRates', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it("shares one bucket among a user's connections, and keeps it while one remains", () => {
    const rates = new UserRates({ perSecond: 1, burst: 2 });
    const a = rates.acquire('u', T0);
    assert.equal(rates.acquire('u', T0), a);
    assert.notEqual(rates.acquire('v', T0), a);
    rates.release('u', T0); // one of u's two connections; the bucket is full
    assert.equal(rates.acquire('u', T0), a);
  });

  it('forgets a full bucket at once when the last connection goes', () => {
    const rates = new UserRates({ perSecond: 1, burst: 2 });
    const a = rates.acquire('u', T0);
    rates.release('u', T0);
    assert.notEqual(rates.acquire('u', T0), a);
  });

  it('keeps a drained bucket past the last connection until it has refilled, then forgets it', () => {
    const rates = new UserRates({ perSecond: 1, burst: 2 });
    const a = rates.acquire('u', T0);
    a.take(T0);
    a.take(T0);
    rates.release('u', T0); // full again in 2000 ms
    mock.timers.tick(1999);
    const again = rates.acquire('u', T0 + 1999);
    assert.equal(again, a);
    assert.equal(again.take(T0 + 1999), true); // 1.999 tokens: no fresh burst
    assert.equal(again.take(T0 + 1999), false);
    rates.release('u', T0 + 1999);
    mock.timers.tick(2000);
    const fresh = rates.acquire('u', T0 + 3999);
    assert.notEqual(fresh, a);
  });

  it('a reconnect cancels the pending expiry', () => {
    const rates = new UserRates({ perSecond: 1, burst: 1 });
    const a = rates.acquire('u', T0);
    a.take(T0);
    rates.release('u', T0);
    assert.equal(rates.acquire('u', T0 + 10), a);
    mock.timers.tick(5000);
    assert.equal(rates.acquire('u', T0 + 5010), a);
  });

  it('a release of an unknown user is ignored', () => {
    const rates = new UserRates({ perSecond: 1, burst: 1 });
    assert.doesNotThrow(() => rates.release('nobody', T0));
  });
});

describe('HandshakeRates', () => {
  it('lets burst handshakes through, then answers the ms until the next one', () => {
    const rates = new HandshakeRates({ perSecond: 3, burst: 2 }, T0);
    assert.deepEqual([rates.take('1.2.3.4', T0), rates.take('1.2.3.4', T0), rates.take('1.2.3.4', T0)], [true, true, 334]);
    assert.equal(rates.take('1.2.3.5', T0), true); // another address, its own bucket
  });

  it('counts an IPv6 address by its /64', () => {
    const rates = new HandshakeRates({ perSecond: 1, burst: 1 }, T0);
    assert.equal(rates.take('2001:db8:0:1::1', T0), true);
    assert.equal(rates.take('2001:db8:0:1::2', T0), 1000);
    assert.equal(rates.take('2001:db8:0:2::1', T0), true);
  });

  it('drops refilled buckets, at most once per refill time', () => {
    const rates = new HandshakeRates({ perSecond: 2, burst: 2 }, T0); // refills in 1000 ms
    rates.take('a', T0); // full again at T0 + 500
    rates.take('b', T0 + 600); // full again at T0 + 1100; no sweep yet
    assert.equal(rates.size, 2);
    rates.take('c', T0 + 1000); // sweep: a goes
    assert.equal(rates.size, 2);
    rates.take('d', T0 + 1999); // no sweep before T0 + 2000
    assert.equal(rates.size, 3);
    rates.take('e', T0 + 2000); // sweep: b and c go (c exactly full), d stays
    assert.equal(rates.size, 2);
    assert.equal(rates.take('d', T0 + 2000), true);
    assert.equal(rates.take('d', T0 + 2000), 500); // d kept its state: one token left, now none
  });

  it('counts the refill time of the first sweep from its construction', () => {
    const rates = new HandshakeRates({ perSecond: 2, burst: 2 }, T0); // refills in 1000 ms
    rates.take('a', T0 + 100); // full again at T0 + 600
    rates.take('b', T0 + 1000); // sweep, T0 + 1000 after construction: a goes
    assert.equal(rates.size, 1);
  });

  it('holds at most 100000 buckets; the address seen least recently gives way', () => {
    const rates = new HandshakeRates({ perSecond: 1, burst: 1 }, T0);
    const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    for (let i = 0; i < 100_000; i++) rates.take(ip(i), T0);
    assert.equal(rates.size, 100_000);
    assert.equal(rates.take(ip(0), T0), 1000); // seen again: now the most recent
    assert.equal(rates.take('192.168.0.1', T0), true); // evicts ip(1)
    assert.equal(rates.size, 100_000);
    assert.equal(rates.take(ip(0), T0), 1000); // still held, still drained
    assert.equal(rates.take(ip(1), T0), true); // was forgotten: a fresh bucket
    assert.equal(rates.size, 100_000);
  });
});

describe('addressKey', () => {
  it('keeps IPv4 and unparseable addresses as they are', () => {
    assert.equal(addressKey('1.2.3.4'), '1.2.3.4');
    assert.equal(addressKey('a:b:c'), 'a:b:c');
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address, in either case', () => {
    assert.equal(addressKey('::ffff:1.2.3.4'), '1.2.3.4');
    assert.equal(addressKey('::FFFF:1.2.3.4'), '1.2.3.4');
  });

  it('counts an IPv6 address by its /64, expanded and normalized', () => {
    assert.equal(addressKey('2001:db8:0:1::1'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:DB8:0000:0001:aaaa::1%eth0'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(addressKey('1::2:3:4:5:6:7'), '1:0:2:3::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('::ffff:0:1'), '0:0:0:0::/64'); // ::ffff: but no IPv4 part
    assert.equal(addressKey('64:ff9b::1.2.3.4'), '64:ff9b:0:0::/64'); // an IPv4 part, not mapped
  });
});

describe('ConnectionCounter', () => {
  const counter = (maxConnections: number, maxConnectionsPerIp: number, maxConnectionsPerUser: number): ConnectionCounter =>
    new ConnectionCounter({ maxConnections, maxConnectionsPerIp, maxConnectionsPerUser } as LimitSettings);
  const admitted = (result: Admission | LimitRefusal): Admission => {
    assert.ok(!('status' in result), `refused: ${JSON.stringify(result)}`);
    return result;
  };
  const refusal = (result: Admission | LimitRefusal | undefined): Pick<LimitRefusal, 'status' | 'code' | 'cause'> | undefined => {
    assert.ok(result && 'status' in result, `admitted: ${JSON.stringify(result)}`);
    return { status: result.status, code: result.code, cause: result.cause };
  };

  it('admits up to maxConnections in all and maxConnectionsPerIp per address (an IPv6 address by its /64)', () => {
    const limits = counter(4, 2, 10);
    assert.deepEqual(limits.admit('1.1.1.1'), { ip: '1.1.1.1', user: undefined, released: false });
    admitted(limits.admit('2001:db8:0:1::1'));
    admitted(limits.admit('2001:db8:0:1::2'));
    assert.deepEqual(refusal(limits.admit('2001:db8:0:1::3')), { status: 429, code: 'TOO_MANY_CONNECTIONS', cause: 'address-connections' });
    admitted(limits.admit('2001:db8:0:2::1'));
    assert.equal(limits.count, 4);
    assert.deepEqual(refusal(limits.admit('3.3.3.3')), { status: 503, code: 'UNAVAILABLE', cause: 'server-full' });
    assert.equal(limits.count, 4);
  });

  it('release gives the place back, once', () => {
    const limits = counter(10, 2, 10);
    const a = admitted(limits.admit('1.1.1.1'));
    admitted(limits.admit('1.1.1.1'));
    limits.release(a);
    limits.release(a);
    assert.equal(a.released, true);
    assert.equal(limits.count, 1);
    admitted(limits.admit('1.1.1.1')); // the address holds 2 again
    assert.deepEqual(refusal(limits.admit('1.1.1.1')), { status: 429, code: 'TOO_MANY_CONNECTIONS', cause: 'address-connections' });
  });

  it("an address's last release frees it entirely", () => {
    const limits = counter(10, 1, 1);
    const a = admitted(limits.admit('1.1.1.1'));
    assert.equal(limits.admitUser(a, 'u'), undefined);
    limits.release(a);
    assert.equal(limits.count, 0);
    // Nothing is kept of it: many addresses and users passing through leave no trace.
    assert.deepEqual(limits.tracked, { addresses: 0, users: 0 });
    const b = admitted(limits.admit('1.1.1.1'));
    assert.equal(limits.admitUser(b, 'u'), undefined);
  });

  it('admitUser counts per user; a refused upgrade gives its place back unless told not to', () => {
    const limits = counter(10, 10, 2);
    const a = admitted(limits.admit('1.1.1.1'));
    assert.equal(limits.admitUser(a, 'u'), undefined);
    assert.equal(a.user, 'u');
    assert.equal(limits.admitUser(a, 'u'), undefined); // already counted: not twice
    const b = admitted(limits.admit('1.1.1.2'));
    assert.equal(limits.admitUser(b, 'u'), undefined);
    const c = admitted(limits.admit('1.1.1.3'));
    assert.deepEqual(refusal(limits.admitUser(c, 'u')), { status: 429, code: 'TOO_MANY_CONNECTIONS', cause: 'user-connections' });
    assert.equal(c.released, true);
    assert.equal(c.user, undefined);
    assert.equal(limits.count, 2);
    const d = admitted(limits.admit('1.1.1.4'));
    assert.ok(refusal(limits.admitUser(d, 'u', false)));
    assert.equal(d.released, false);
    assert.equal(limits.count, 3);
    limits.release(a); // frees one of u's places
    assert.equal(limits.admitUser(d, 'u'), undefined);
  });
});

describe('clientAddress', () => {
  const request = (forwardedFor: string | string[] | undefined): IncomingMessage =>
    ({
      headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
      socket: { remoteAddress: '9.9.9.9' },
    }) as unknown as IncomingMessage;

  it("is the peer's address without trustProxy, whatever the header says", () => {
    assert.equal(clientAddress(request('1.1.1.1'), false), '9.9.9.9');
    assert.equal(clientAddress(request('1.1.1.1'), 0), '9.9.9.9');
    assert.equal(clientAddress({ headers: {}, socket: {} } as unknown as IncomingMessage, false), 'unknown');
  });

  it('behind n proxies, is the entry the outermost one added (n-th from the end), trimmed', () => {
    assert.equal(clientAddress(request('6.6.6.6, 1.1.1.1'), true), '1.1.1.1');
    assert.equal(clientAddress(request('6.6.6.6, 1.1.1.1 ,2.2.2.2'), 2), '1.1.1.1');
    assert.equal(clientAddress(request(['6.6.6.6, 1.1.1.1', '2.2.2.2']), 2), '1.1.1.1');
    assert.equal(clientAddress(request('1.1.1.1, ,2.2.2.2'), 2), '1.1.1.1');
  });

  it('drops the port some proxies add to the entry, so that each connection does not count as a new client', () => {
    assert.equal(clientAddress(request('6.6.6.6, 1.2.3.4:5678'), true), '1.2.3.4');
    assert.equal(clientAddress(request('[2001:db8::1]:443'), true), '2001:db8::1');
    assert.equal(clientAddress(request('[2001:db8::1]'), true), '2001:db8::1');
    assert.equal(clientAddress(request('2001:db8::1'), true), '2001:db8::1');
    assert.equal(addressKey(clientAddress(request('[2001:db8:0:1::1]:443'), true)), '2001:db8:0:1::/64');
  });

  it("falls back to the peer's address when the header has too few entries", () => {
    assert.equal(clientAddress(request('2.2.2.2'), 2), '9.9.9.9');
    assert.equal(clientAddress(request(undefined), true), '9.9.9.9');
    assert.equal(clientAddress(request(''), 1), '9.9.9.9');
  });
});

/** A connection with no socket behind it: FramePolicy and the guards only read and set its fields. */
function bareConnection(): { socket: object; connection: Connection } {
  const socket = {};
  const connection = new Connection(socket, {} as RealtimeTransport, undefined, {} as GatewaySettings, new Set());
  registerConnection(socket, connection);
  return { socket, connection };
}

describe('FramePolicy', () => {
  const log = new LogThrottle({ warn: () => undefined, error: () => undefined, debug: () => undefined }, { lines: 1, intervalMs: 1000 });
  const policy = (messageRate: LimitSettings['messageRate'], userMessageRate: LimitSettings['userMessageRate']): FramePolicy =>
    new FramePolicy({ messageRate, userMessageRate } as LimitSettings, log);

  it("gives a user's bucket back when the user's last connection closes", () => {
    const frames = policy(false, { perSecond: 1, burst: 5 });
    const [one, two] = [bareConnection().connection, bareConnection().connection];
    frames.attach(one, 'alice');
    frames.attach(two, 'alice');
    assert.equal(frames.trackedUsers, 1);
    frames.release(one);
    assert.equal(frames.trackedUsers, 1);
    // The bucket is full (nothing was taken): it goes at once, not after a refill.
    frames.release(two);
    assert.equal(frames.trackedUsers, 0);
  });

  it('keeps no user bucket for a connection without a user, nor when user rates are off', () => {
    const frames = policy({ perSecond: 1, burst: 1 }, { perSecond: 1, burst: 5 });
    const anonymous = bareConnection().connection;
    frames.attach(anonymous, undefined);
    assert.equal(frames.trackedUsers, 0);
    assert.equal(anonymous.userRate, undefined);
    frames.release(anonymous);
    const off = policy(false, false);
    const alice = bareConnection().connection;
    off.attach(alice, 'alice');
    assert.deepEqual([off.trackedUsers, alice.rate, alice.userRate], [0, undefined, undefined]);
    assert.equal(off.withinRate(alice), true);
  });

  it('a connection signing in later gets its user bucket then', () => {
    const frames = policy(false, { perSecond: 1, burst: 1 });
    const connection = bareConnection().connection;
    frames.attach(connection, undefined);
    assert.equal(frames.withinRate(connection), true);
    assert.equal(frames.withinRate(connection), true);
    frames.attachUser(connection, 'alice');
    assert.deepEqual([frames.withinRate(connection), frames.withinRate(connection)], [true, false]);
    assert.equal(frames.trackedUsers, 1);
  });
});

describe('RateLimitGuard', () => {
  class Gateway {
    @RateLimit({ perSecond: 1, burst: 1 })
    limited(): void {}

    unlimited(): void {}
  }

  const guard = new RateLimitGuard(new Reflector());
  const context = (client: object, handler: () => void): ExecutionContextHost => {
    const host = new ExecutionContextHost([client, {}, 'event'], Gateway, handler);
    host.setType('ws');
    return host;
  };

  it('limits a realtime connection per handler', () => {
    const { socket } = bareConnection();
    assert.equal(guard.canActivate(context(socket, Gateway.prototype.limited)), true);
    assert.throws(
      () => guard.canActivate(context(socket, Gateway.prototype.limited)),
      (error: unknown) => {
        assert.ok(error instanceof RealtimeError);
        assert.equal(error.code, 'RATE_LIMITED');
        return true;
      },
    );
  });

  it('keeps refilling when the wall clock is set back (it counts time on a monotonic clock)', async () => {
    const { socket } = bareConnection();
    const wallClock = Date.now;
    try {
      assert.equal(guard.canActivate(context(socket, Gateway.prototype.limited)), true);
      Date.now = () => wallClock() - 3_600_000; // set an hour back (NTP, a VM resumed)
      await new Promise((resolve) => setTimeout(resolve, 1100)); // one token's worth at 1/s
      assert.equal(guard.canActivate(context(socket, Gateway.prototype.limited)), true);
    } finally {
      Date.now = wallClock;
    }
  });

  it('counts one call once, however many times the guard is named for it (class and handler)', () => {
    const { socket } = bareConnection();
    const call = context(socket, Gateway.prototype.limited);
    assert.equal(guard.canActivate(call), true);
    assert.equal(guard.canActivate(call), true);
    assert.throws(() => guard.canActivate(context(socket, Gateway.prototype.limited)), RealtimeError);
  });

  it('lets through a handler without a rate (the guard named on its own), however often', () => {
    const { socket } = bareConnection();
    for (let i = 0; i < 5; i++) {
      assert.equal(guard.canActivate(context(socket, Gateway.prototype.unlimited)), true);
    }
  });

  it('refuses a bad rate when the decorator is applied, naming it', () => {
    assert.throws(() => RateLimit({ perSecond: 0, burst: 1 }), /^TypeError: Realtime option @RateLimit\(\) needs/);
  });

  it('lets through a client that is not a realtime connection (it has nothing to count it by)', () => {
    for (let i = 0; i < 5; i++) {
      assert.equal(guard.canActivate(context({}, Gateway.prototype.limited)), true);
    }
  });

  it('lets through a context without a client (null or undefined), as a global guard sees elsewhere', () => {
    for (const client of [null, undefined]) {
      assert.equal(guard.canActivate(context(client as unknown as object, Gateway.prototype.limited)), true);
    }
  });
});
