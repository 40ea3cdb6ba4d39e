import { ClientErrorCode, type RealtimeClientError } from './client-error.js';
import type { ClientClock } from './clock.js';

/**
 * The client's app-level heartbeat (browsers cannot see protocol pings): after
 * `intervalMs` without traffic it sends a `ping` request, and a `pong` that does not come
 * in time means the link is dead. Any inbound frame counts as traffic.
 */
export class ClientHeartbeat {
  private timer: unknown;
  private lastTraffic = 0;
  private generation = 0;

  constructor(
    private readonly clock: ClientClock,
    private readonly intervalMs: number | false,
  ) {}

  /** Starts watching a new connection: `ping` sends the ping request, `dead` is called when its pong does not come. */
  start(ping: () => Promise<unknown>, dead: () => void): void {
    this.stop();
    this.lastTraffic = this.clock.now();
    const generation = this.generation;
    this.schedule(ping, dead, generation);
  }

  /** Something arrived. */
  traffic(): void {
    this.lastTraffic = this.clock.now();
  }

  stop(): void {
    this.generation++;
    this.clock.clearTimeout(this.timer);
  }

  private schedule(ping: () => Promise<unknown>, dead: () => void, generation: number, delay?: number): void {
    const interval = this.intervalMs;
    if (interval === false) {
      return;
    }
    this.timer = this.clock.setTimeout(() => {
      if (generation !== this.generation) {
        return;
      }
      const silentFor = this.clock.now() - this.lastTraffic;
      if (silentFor < interval) {
        this.schedule(ping, dead, generation, interval - silentFor);
        return;
      }
      ping().then(
        () => generation === this.generation && this.schedule(ping, dead, generation),
        (error: RealtimeClientError) => {
          if (generation !== this.generation) {
            return; // the connection ended: the next one has a heartbeat of its own
          }
          // An error answer (RATE_LIMITED, say) proves the link carries frames: ping again later.
          error.code === ClientErrorCode.TIMEOUT ? dead() : this.schedule(ping, dead, generation);
        },
      );
    }, delay ?? interval);
  }
}
