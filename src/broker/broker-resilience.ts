import { Logger } from '@nestjs/common';
import { LogThrottle } from '../limits/log-throttle.js';
import { BrokerTimeoutError, BrokerUnavailableError, messageOf } from './broker-errors.js';
import { promiseOf } from './promise-of.js';
import type { BrokerHealth, BrokerState, HistoryPolicy, StreamPosition } from './broker.interface.js';

/** What a broker gives {@link BrokerResilience}: its connections, seen from outside. */
export interface ResilientBackend {
  /** Whether every connection the broker needs is up. A stall is found out by the wrapper itself. */
  connected(): boolean;
  /** Asks the backend for an answer (a `PING`); it gets the command deadline. */
  probe(): Promise<unknown>;
  /**
   * Puts back what this instance keeps on the backend after an outage or a stall
   * (subscriptions, presence, removals made meanwhile). Safe to call again at any time;
   * rejects when it could not finish, and is then tried again.
   */
  restore(): Promise<void>;
  /** Sends one message; resolves once the backend took it (with its position when kept in history). */
  send(channel: string, payload: string, history: HistoryPolicy | undefined): Promise<StreamPosition | undefined>;
  /** Told once the backend is back after an outage or a stall, restored and flushed: what was published meanwhile may have been missed. */
  restored?(): void;
}

/** Settings of {@link BrokerResilience}. */
export interface BrokerResilienceOptions {
  /** Names the backend in log lines and health details: `Redis`, … */
  readonly name: string;
  /** Publishes kept while the backend is away, and publishes awaiting its answer; beyond it they are refused. */
  readonly maxPending: number;
  /**
   * A command without an answer for this long fails with {@link BrokerTimeoutError} and
   * counts as a stall. Publishes already sent are not given up on (the backend may still
   * take them): they wait for its answer, or for the connection to drop.
   */
  readonly commandTimeoutMs: number;
  /** How often the backend is asked whether it still answers, in ms. */
  readonly healthCheckMs: number;
  /** Where its lines go. Default a Nest `Logger` named after the backend. */
  readonly logger?: Pick<Logger, 'log' | 'warn'>;
}

interface Kept {
  readonly channel: string;
  readonly payload: string;
  readonly history: HistoryPolicy | undefined;
  readonly resolve: (position: StreamPosition | undefined) => void;
  readonly reject: (error: Error) => void;
}

/** Pause between the probes that watch a stalled backend for its return. */
const STALL_PROBE_PAUSE_MS = 100;
const RESTORE_RETRY_MS = 1000;

/**
 * The outage handling a networked broker needs, in one reusable piece: health
 * (`connecting` → `ok` ⇄ `degraded` → `closed`), a deadline on every command with stalls
 * recognised by {@link BrokerTimeoutError}, a bounded queue of publishes kept while the
 * backend is away, and the order of recovery: restore first, then flush the queue in
 * order, and only then report `ok`.
 *
 * A broker composes it: it calls {@link up} and {@link down} as its connections come and
 * go, runs its commands through {@link attempt}, and publishes through {@link publish}.
 * Nothing here throws at the caller except the rejections it documents. A backend method
 * that throws instead of rejecting counts as a failed call, and a `connected()` that
 * throws as not connected.
 */
export class BrokerResilience {
  private readonly logger: Pick<Logger, 'log' | 'warn'>;
  private currentState: BrokerState = 'connecting';
  private detail: string | undefined;
  /** The last command or probe got no answer in time: an outage even though sockets are open. */
  private stalled = false;
  private everReady = false;
  /** The restore under way, which a caller can wait for (rounds asked for meanwhile included). */
  private restoring: Promise<void> | undefined;
  private restoreAgain = false;
  private readonly pending: Kept[] = [];
  private inFlight = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private stallWatch: NodeJS.Timeout | undefined;
  private restoreRetry: NodeJS.Timeout | undefined;
  /** Publishes refused because the backend was away or slow and the queue was full. */
  dropped = 0;
  /** Failed commands of a connected backend: a few lines per kind, then counts. */
  private readonly errorsWhileConnected: LogThrottle;

  constructor(
    private readonly backend: ResilientBackend,
    private readonly options: BrokerResilienceOptions,
  ) {
    this.logger = options.logger ?? new Logger(`${options.name}Broker`);
    const warn = (line: string): void => this.logger.warn(line);
    this.errorsWhileConnected = new LogThrottle({ warn, error: warn, debug: () => undefined }, { lines: 5, intervalMs: 10_000 });
  }

  /** Starts the periodic health check. */
  start(): void {
    this.healthTimer = setInterval(() => void this.checkHealth(), this.options.healthCheckMs);
    this.healthTimer.unref();
  }

  /** The current state. */
  get state(): BrokerState {
    return this.currentState;
  }

  /** Whether the backend answers now (connected, not stalled, not closed): worth asking rather than falling back. */
  get answering(): boolean {
    return this.currentState !== 'closed' && !this.stalled && this.connected();
  }

  /** Health as `GET /health` reports it. */
  health(type: string): BrokerHealth {
    const state = this.currentState;
    return this.detail && state !== 'ok' && state !== 'closed' ? { type, status: state, detail: this.detail } : { type, status: state };
  }

  /**
   * Publishes: at once when all is well; kept in order while the backend is away, up to
   * `maxPending`. Resolves once the backend took the message. Rejects with
   * {@link BrokerUnavailableError} when the queue is full, the backend refused it or the
   * connection dropped before it answered, or the broker closed first.
   */
  publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined> {
    const state = this.currentState;
    if (state === 'ok' && this.pending.length === 0 && this.inFlight < this.options.maxPending) {
      return this.send(channel, payload, history);
    }
    if (state !== 'ok' && state !== 'closed' && this.pending.length < this.options.maxPending) {
      return new Promise((resolve, reject) => this.pending.push({ channel, payload, history, resolve, reject }));
    }
    this.dropped++;
    if (this.dropped === 1 || this.dropped % 1000 === 0) {
      this.logger.warn(`${this.options.name} unreachable or slow: ${this.dropped} publishes refused so far`);
    }
    return Promise.reject(new BrokerUnavailableError(`${this.options.name} cannot take the message now (${this.why()})`));
  }

  /**
   * Runs one command under the deadline. A failure is judged (a timeout is a stall; an
   * error while connected is logged; otherwise an outage) and then rethrown.
   */
  attempt<T>(command: string, call: () => Promise<T>): Promise<T> {
    const timeoutMs = this.options.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = new BrokerTimeoutError(command, timeoutMs);
        this.failed(command, error);
        reject(error);
      }, timeoutMs); // not unref'd: the caller's promise settles by the deadline, whatever else the process holds
      promiseOf(call).then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          this.failed(command, error);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /** A connection came (back) up: restore, then report `ok` and flush what was kept. Resolves once that is done (or failed). */
  up(): Promise<void> {
    return this.currentState === 'closed' ? Promise.resolve() : this.restore();
  }

  /** A connection dropped or could not connect: `degraded`, with `detail` as the reason. */
  down(detail: string): void {
    if (this.currentState === 'closed') {
      return;
    }
    if (this.currentState === 'ok') {
      this.logger.warn(`${this.options.name} unreachable (${detail}): local delivery goes on, remote delivery resumes when it is back`);
    }
    this.currentState = 'degraded';
    this.detail = detail;
  }

  /** Stops every timer and refuses what was kept. */
  close(): void {
    this.currentState = 'closed';
    this.errorsWhileConnected.flush();
    clearInterval(this.healthTimer);
    clearTimeout(this.stallWatch);
    clearTimeout(this.restoreRetry);
    for (const kept of this.pending.splice(0)) {
      kept.reject(new BrokerUnavailableError(`the ${this.options.name} broker closed before the message could be sent`));
    }
  }

  /** No deadline here: a stalled backend may still take it, so only its answer or a dropped connection settles it. */
  private send(channel: string, payload: string, history: HistoryPolicy | undefined): Promise<StreamPosition | undefined> {
    this.inFlight++;
    return promiseOf(() => this.backend.send(channel, payload, history)).then(
      (position) => {
        this.inFlight--;
        return position;
      },
      (error: unknown) => {
        this.inFlight--;
        this.failed('publish', error);
        throw new BrokerUnavailableError(`${this.options.name} did not take the message: ${messageOf(error)}`);
      },
    );
  }

  /** The backend's `connected()`; one that throws is taken for not connected. */
  private connected(): boolean {
    try {
      return this.backend.connected();
    } catch {
      return false;
    }
  }

  private failed(command: string, error: unknown): void {
    const text = `${command} failed: ${messageOf(error)}`;
    if (error instanceof BrokerTimeoutError) {
      this.stalled = true;
      this.down(text);
      this.watchStall();
    } else if (this.connected()) {
      // The backend answered with an error while connected: not an outage (a Redis Cluster
      // node that is down fails only its slots' commands, maybe many a second).
      this.errorsWhileConnected.log('warn', command, () => text);
    } else {
      this.down(text);
    }
  }

  private restore(): Promise<void> {
    if (this.restoring) {
      this.restoreAgain = true; // what changed meanwhile is caught up by one more round
      return this.restoring;
    }
    this.restoring = this.restoreRounds();
    return this.restoring;
  }

  private async restoreRounds(): Promise<void> {
    try {
      do {
        this.restoreAgain = false;
        await this.backend.restore();
      } while (this.restoreAgain && this.currentState !== 'closed');
      this.settle();
    } catch (error) {
      this.down(`restoring failed: ${messageOf(error)}`);
      clearTimeout(this.restoreRetry);
      this.restoreRetry = setTimeout(() => this.answering && void this.up(), RESTORE_RETRY_MS);
      this.restoreRetry.unref();
    } finally {
      this.restoring = undefined;
    }
  }

  /** All restored and answering: `ok`, and what was kept goes out in order. */
  private settle(): void {
    if (this.currentState === 'closed' || this.stalled || !this.connected()) {
      return;
    }
    const back = this.everReady && this.currentState !== 'ok';
    if (back) {
      this.logger.log(`${this.options.name} is back: subscriptions and presence restored`);
    }
    this.everReady = true;
    this.currentState = 'ok';
    this.detail = undefined;
    for (const kept of this.pending.splice(0)) {
      this.send(kept.channel, kept.payload, kept.history).then(kept.resolve, kept.reject);
    }
    if (back) {
      try {
        this.backend.restored?.();
      } catch (error) {
        this.logger.warn(`${this.options.name}: restored() threw: ${messageOf(error)}`);
      }
    }
  }

  /** A connection can stay open while the backend no longer answers (stopped, network gone): ask it. */
  private async checkHealth(): Promise<void> {
    if (this.currentState === 'closed' || !this.connected()) {
      return;
    }
    try {
      await this.attempt('health check', () => this.backend.probe());
    } catch {
      return; // judged by attempt()
    }
    if (this.stalled) {
      this.stalled = false;
      void this.up(); // what changed while it stalled
    } else if (this.currentState !== 'ok' && !this.restoring) {
      void this.up(); // degraded by an error that did not drop a connection
    }
  }

  /**
   * While the backend is stalled, asks it again and again (a probe bounded by the command
   * deadline, then a short pause), so that recovery does not wait for the next health check.
   */
  private watchStall(): void {
    if (this.stallWatch || this.currentState === 'closed') {
      return;
    }
    this.stallWatch = setTimeout(() => {
      void this.checkHealth().finally(() => {
        this.stallWatch = undefined;
        if (this.stalled) {
          this.watchStall();
        }
      });
    }, STALL_PROBE_PAUSE_MS);
    this.stallWatch.unref();
  }

  private why(): string {
    return this.currentState === 'closed'
      ? 'closed'
      : this.currentState === 'ok'
        ? 'too many publishes in flight'
        : (this.detail ?? this.currentState);
  }
}
