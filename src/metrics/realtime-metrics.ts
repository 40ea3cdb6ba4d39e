import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import type { BrokerHealth } from '../broker/broker.interface.js';
import type { UpgradeRefusalCause } from '../transport/ws/upgrade-response.js';

/** Label for frames whose event has no handler (bounded label values: never the client's text). */
const UNKNOWN_EVENT_LABEL = '(unknown)';
/** Upper bounds of the handler duration histogram, in seconds. */
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const DURATION_METRIC = 'realtime_handler_duration_seconds';

/** Plain counts by label value: what the hot path touches (a Map lookup and an add). */
class Tally {
  readonly counts = new Map<string, number>();

  add(key: string, value = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + value);
  }
}

/** One series of the duration histogram. */
class Durations {
  readonly buckets = new Float64Array(DURATION_BUCKETS.length);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]!) {
        this.buckets[i]!++;
        return;
      }
    }
  }
}

/**
 * The plugin's Prometheus metrics, in a registry of their own (`registry`), so that an
 * application exposes them where it likes (`GET /metrics` in the sample app) and several
 * applications in one process do not collide. Label values are bounded: gateway paths,
 * handler event names, error codes and disconnect causes, never client-chosen text.
 *
 * The hot path only adds to plain numbers; prom-client reads them when it is scraped, so
 * counting costs next to nothing per message.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `realtime_connections` | gauge | `gateway` |
 * | `realtime_connects_total` | counter | `gateway` |
 * | `realtime_disconnects_total` | counter | `gateway`, `cause` |
 * | `realtime_upgrades_refused_total` | counter | `status`, `cause` |
 * | `realtime_messages_in_total` | counter | `gateway`, `event` |
 * | `realtime_messages_out_total` | counter | `kind` (`reply`, `error`, `push`) |
 * | `realtime_errors_total` | counter | `gateway`, `code` |
 * | `realtime_handler_duration_seconds` | histogram | `gateway`, `event` |
 * | `realtime_heartbeat_reaped_total` | counter | `gateway` |
 * | `realtime_broker_published_total`, `realtime_broker_received_total` | counter | |
 * | `realtime_broker_up` | gauge (1 ok, 0 otherwise) | `type`, `status` |
 */
@Injectable()
export class RealtimeMetrics {
  /** The registry holding every metric of the plugin: `await registry.metrics()` is the exposition text. */
  readonly registry = new Registry();
  private readonly gateways = new Map<string, GatewayMetrics>();
  private readonly refusals = new Tally();
  private readonly out = new Tally();
  private published = 0;
  private received = 0;
  private brokerHealth: (() => BrokerHealth) | undefined;

  constructor() {
    const registers = [this.registry];
    // The collect callbacks get the prom-client metric as `this`: the counts are read through `metrics`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- `this` inside them is prom-client's metric
    const metrics = this;
    const each = (read: (gateway: GatewayMetrics) => Tally, name: string) =>
      function (this: Counter<string>) {
        this.reset();
        for (const gateway of metrics.gateways.values()) {
          for (const [key, value] of read(gateway).counts) {
            this.inc({ gateway: gateway.gateway, [name]: key }, value);
          }
        }
      };
    const perGateway = (name: string, help: string, read: (gateway: GatewayMetrics) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['gateway'],
        registers,
        collect() {
          this.reset();
          for (const gateway of metrics.gateways.values()) {
            this.inc({ gateway: gateway.gateway }, read(gateway));
          }
        },
      });
    };
    new Gauge({
      name: 'realtime_connections',
      help: 'Open WebSocket connections',
      labelNames: ['gateway'],
      registers,
      collect() {
        this.reset();
        for (const gateway of metrics.gateways.values()) {
          this.set({ gateway: gateway.gateway }, gateway.open);
        }
      },
    });
    perGateway('realtime_connects_total', 'Accepted WebSocket connections', (gateway) => gateway.connects);
    perGateway('realtime_heartbeat_reaped_total', 'Connections terminated by the heartbeat', (gateway) => gateway.reaped);
    new Counter({
      name: 'realtime_disconnects_total',
      help: 'Closed WebSocket connections, by cause',
      labelNames: ['gateway', 'cause'],
      registers,
      collect: each((gateway) => gateway.disconnects, 'cause'),
    });
    new Counter({
      name: 'realtime_messages_in_total',
      help: 'Inbound frames, by event',
      labelNames: ['gateway', 'event'],
      registers,
      collect: each((gateway) => gateway.messagesIn, 'event'),
    });
    new Counter({
      name: 'realtime_errors_total',
      help: 'Error frames sent, by code',
      labelNames: ['gateway', 'code'],
      registers,
      collect: each((gateway) => gateway.errors, 'code'),
    });
    const global = (name: string, help: string, label: string, tally: Tally): void => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [key, value] of tally.counts) {
            this.inc({ [label]: key }, value);
          }
        },
      });
    };
    const refusals = this.refusals;
    new Counter({
      name: 'realtime_upgrades_refused_total',
      help: 'Upgrade requests refused before any WebSocket, by HTTP status and cause',
      labelNames: ['status', 'cause'],
      registers,
      collect() {
        this.reset();
        for (const [key, value] of refusals.counts) {
          const [status, cause] = key.split(' ');
          this.inc({ status, cause }, value);
        }
      },
    });
    global('realtime_messages_out_total', 'Outbound frames, by kind', 'kind', this.out);
    new Counter({
      name: 'realtime_broker_published_total',
      help: 'Payloads handed to the broker',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.published);
      },
    });
    new Counter({
      name: 'realtime_broker_received_total',
      help: 'Payloads received from the broker from other instances',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.received);
      },
    });
    new Gauge({
      name: 'realtime_broker_up',
      help: '1 when the broker is ok, else 0',
      labelNames: ['type', 'status'],
      registers,
      collect() {
        this.reset();
        const health = metrics.brokerHealth?.();
        if (health) {
          this.set({ type: health.type, status: health.status }, health.status === 'ok' ? 1 : 0);
        }
      },
    });
    this.registry.registerMetric(this.durationHistogram() as never);
  }

  /** @internal Where `realtime_broker_up` reads the broker's health at each scrape. */
  watchBroker(health: () => BrokerHealth): void {
    this.brokerHealth = health;
  }

  /** @internal The metrics of one gateway path. */
  forGateway(path: string): GatewayMetrics {
    let metrics = this.gateways.get(path);
    if (!metrics) {
      metrics = new GatewayMetrics(path, this.out);
      this.gateways.set(path, metrics);
    }
    return metrics;
  }

  /** @internal An upgrade refused with HTTP `status` for `cause` (a fixed word, never client text). */
  refusedUpgrade(status: number, cause: UpgradeRefusalCause): void {
    this.refusals.add(`${status} ${cause}`);
  }

  /** @internal Pushes sent to `count` recipients. */
  pushed(count: number): void {
    if (count > 0) {
      this.out.add('push', count);
    }
  }

  /** @internal */
  publishedOne(): void {
    this.published++;
  }

  /** @internal */
  receivedOne(): void {
    this.received++;
  }

  /** The duration histogram as prom-client's registry expects a metric: read at scrape time. */
  private durationHistogram(): object {
    const gateways = this.gateways;
    return {
      name: DURATION_METRIC,
      help: 'Time from a frame to its reply (or the end of its handler), by event',
      type: 'histogram',
      aggregator: 'sum',
      get: () => {
        const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
        for (const gateway of gateways.values()) {
          for (const [event, series] of gateway.durations) {
            const labels = { gateway: gateway.gateway, event };
            let cumulative = 0;
            DURATION_BUCKETS.forEach((bound, i) => {
              cumulative += series.buckets[i]!;
              values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${DURATION_METRIC}_bucket` });
            });
            values.push({ labels: { ...labels, le: '+Inf' }, value: series.count, metricName: `${DURATION_METRIC}_bucket` });
            values.push({ labels, value: series.sum, metricName: `${DURATION_METRIC}_sum` });
            values.push({ labels, value: series.count, metricName: `${DURATION_METRIC}_count` });
          }
        }
        return {
          name: DURATION_METRIC,
          help: 'Time from a frame to its reply (or the end of its handler), by event',
          type: 'histogram',
          values,
          aggregator: 'sum',
        };
      },
      reset: () => undefined,
    };
  }
}

/** @internal One gateway's counts: plain numbers and maps, read at scrape time. */
export class GatewayMetrics {
  open = 0;
  connects = 0;
  reaped = 0;
  readonly disconnects = new Tally();
  readonly messagesIn = new Tally();
  readonly errors = new Tally();
  readonly durations = new Map<string, Durations>();

  constructor(
    readonly gateway: string,
    private readonly out: Tally,
  ) {}

  connected(): void {
    this.connects++;
    this.open++;
  }

  disconnected(cause: string): void {
    this.disconnects.add(cause);
    this.open--;
  }

  reapedOne(): void {
    this.reaped++;
  }

  replied(): void {
    this.out.add('reply');
  }

  /** Counts an inbound frame; `event` must be a handler's (or a reserved) name. */
  messageIn(event: string | undefined): void {
    this.messagesIn.add(event ?? UNKNOWN_EVENT_LABEL);
  }

  duration(event: string, seconds: number): void {
    let series = this.durations.get(event);
    if (!series) {
      series = new Durations();
      this.durations.set(event, series);
    }
    series.observe(seconds);
  }

  error(code: string): void {
    this.errors.add(code);
    this.out.add('error');
  }
}
