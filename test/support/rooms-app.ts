import { RealtimeModule, type RealtimeBroker, RealtimeHub, type RealtimeModuleOptions } from '../../src/index.js';
import { ClassLimitedGateway, PublicRoomsGateway, RoomsGateway, RoomsLog } from '../fixtures/rooms-gateways.js';
import { startApp, type RunningApp } from './app.js';
import { handMadeToken, now } from './tokens.js';
import type { INestApplication } from '@nestjs/common';
import type { ClientOptions } from 'ws';
import { TestClient } from './ws-client.js';

export const ROOMS_SECRET = 'rooms-test-secret-0123456789abcdef0123';

/** An application instance with the `/rooms` gateway on the given broker. */
export interface RoomsApp extends RunningApp {
  hub: RealtimeHub;
  log: RoomsLog;
  /** Connects to `/rooms` as `sub`. */
  connect(sub: string, options?: ClientOptions): Promise<TestClient>;
}

export async function startRoomsApp(
  broker?: RealtimeBroker,
  heartbeat?: { intervalMs: number; timeoutMs: number },
  port = 0,
  options: RealtimeModuleOptions = {},
  configure?: (app: INestApplication) => void,
): Promise<RoomsApp> {
  const running = await startApp(
    {
      imports: [RealtimeModule.forRoot({ auth: { secret: ROOMS_SECRET }, broker, heartbeat, ...options })],
      providers: [RoomsLog, RoomsGateway, PublicRoomsGateway, ClassLimitedGateway],
    },
    configure,
    port,
  );
  return {
    ...running,
    hub: running.app.get(RealtimeHub),
    log: running.app.get(RoomsLog),
    connect: (sub, options = {}) =>
      TestClient.connect(running.wsUrl('/rooms'), {
        ...options,
        headers: { authorization: `Bearer ${tokenFor(sub)}` },
      }),
  };
}

export function tokenFor(sub: string, lifetimeSeconds = 3600): string {
  return handMadeToken({ alg: 'HS256', typ: 'JWT' }, { sub, exp: now() + lifetimeSeconds }, { hmac: ROOMS_SECRET });
}
