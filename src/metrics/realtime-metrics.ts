import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BrokerHealth } from '../broker/broker.interface.js';

/** Label for frames whose event has no handler (bounded label values: never the client's text). */
const UNKNOWN_EVENT_LABEL = '(unknown)';

/**
 * The plugin's Prometheus metrics, in a registry of their own (`registry`), so that an
 * application exposes them where it likes (`GET /metrics` in the sample app) and several
 * applications in one process do not collide. Label values are bounded: gateway paths,
 * handler event names, error codes and disconnect causes, never client-chosen text.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `realtime_connections` | gauge | `gateway` |
 * | `realtime_connects_total` | counter | `gateway` |
 * | `realtime_disconnects_total` | counter | `gateway`, `cause` |
 * | `realtime_upgrades_refused_total` | counter | `status` |
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
  /** @internal */ readonly connections = new Gauge({ name: 'realtime_connections', help: 'Open WebSocket connections', labelNames: ['gateway'], registers: [this.registry] });
  /** @internal */ readonly connects = new Counter({ name: 'realtime_connects_total', help: 'Accepted WebSocket connections', labelNames: ['gateway'], registers: [this.registry] });
  /** @internal */ readonly disconnects = new Counter({ name: 'realtime_disconnects_total', help: 'Closed WebSocket connections, by cause', labelNames: ['gateway', 'cause'], registers: [this.registry] });
  /** @internal */ readonly refused = new Counter({ name: 'realtime_upgrades_refused_total', help: 'Upgrade requests refused before any WebSocket, by HTTP status', labelNames: ['status'], registers: [this.registry] });
  /** @internal */ readonly messagesIn = new Counter({ name: 'realtime_messages_in_total', help: 'Inbound frames, by event', labelNames: ['gateway', 'event'], registers: [this.registry] });
  /** @internal */ readonly messagesOut = new Counter({ name: 'realtime_messages_out_total', help: 'Outbound frames, by kind', labelNames: ['kind'], registers: [this.registry] });
  /** @internal */ readonly errors = new Counter({ name: 'realtime_errors_total', help: 'Error frames sent, by code', labelNames: ['gateway', 'code'], registers: [this.registry] });
  /** @internal */ readonly durations = new Histogram({
    name: 'realtime_handler_duration_seconds',
    help: 'Time from a frame to its reply (or the end of its handler), by event',
    labelNames: ['gateway', 'event'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  /** @internal */ readonly reaped = new Counter({ name: 'realtime_heartbeat_reaped_total', help: 'Connections terminated by the heartbeat', labelNames: ['gateway'], registers: [this.registry] });
  /** @internal */ readonly published = new Counter({ name: 'realtime_broker_published_total', help: 'Payloads handed to the broker', registers: [this.registry] });
  /** @internal */ readonly received = new Counter({ name: 'realtime_broker_received_total', help: 'Payloads received from the broker from other instances', registers: [this.registry] });
  private brokerHealth: (() => BrokerHealth) | undefined;
  /** @internal */ readonly brokerUp = new Gauge({
    name: 'realtime_broker_up',
    help: '1 when the broker is ok, else 0',
    labelNames: ['type', 'status'],
    registers: [this.registry],
    collect: () => {
      const health = this.brokerHealth?.();
      this.brokerUp.reset();
      if (health) {
        this.brokerUp.labels(health.type, health.status).set(health.status === 'ok' ? 1 : 0);
      }
    },
  });
  private readonly gateways = new Map<string, GatewayMetrics>();

  /** @internal Where `realtime_broker_up` reads the broker's health at each scrape. */
  watchBroker(health: () => BrokerHealth): void {
    this.brokerHealth = health;
  }

  /** @internal The metrics of one gateway, with their label children made once. */
  forGateway(path: string): GatewayMetrics {
    let metrics = this.gateways.get(path);
    if (!metrics) {
      metrics = new GatewayMetrics(this, path);
      this.gateways.set(path, metrics);
    }
    return metrics;
  }
}

type CounterChild = ReturnType<Counter<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

/** @internal One gateway's label children, cached: the hot path never hashes labels. */
export class GatewayMetrics {
  readonly connections;
  readonly connects;
  readonly reaped;
  readonly reply: CounterChild;
  readonly errorOut: CounterChild;
  readonly push: CounterChild;
  private readonly inByEvent = new Map<string, CounterChild>();
  private readonly durationByEvent = new Map<string, HistogramChild>();
  private readonly errorsByCode = new Map<string, CounterChild>();
  private readonly disconnectsByCause = new Map<string, CounterChild>();

  constructor(
    private readonly metrics: RealtimeMetrics,
    readonly gateway: string,
  ) {
    this.connections = metrics.connections.labels(gateway);
    this.connects = metrics.connects.labels(gateway);
    this.reaped = metrics.reaped.labels(gateway);
    this.reply = metrics.messagesOut.labels('reply');
    this.errorOut = metrics.messagesOut.labels('error');
    this.push = metrics.messagesOut.labels('push');
  }

  /** Counts an inbound frame; `event` must be a handler's (or a reserved) name. */
  messageIn(event: string | undefined): void {
    const label = event ?? UNKNOWN_EVENT_LABEL;
    let child = this.inByEvent.get(label);
    if (!child) {
      child = this.metrics.messagesIn.labels(this.gateway, label);
      this.inByEvent.set(label, child);
    }
    child.inc();
  }

  duration(event: string, seconds: number): void {
    let child = this.durationByEvent.get(event);
    if (!child) {
      child = this.metrics.durations.labels(this.gateway, event);
      this.durationByEvent.set(event, child);
    }
    child.observe(seconds);
  }

  error(code: string): void {
    let child = this.errorsByCode.get(code);
    if (!child) {
      child = this.metrics.errors.labels(this.gateway, code);
      this.errorsByCode.set(code, child);
    }
    child.inc();
    this.errorOut.inc();
  }

  disconnected(cause: string): void {
    let child = this.disconnectsByCause.get(cause);
    if (!child) {
      child = this.metrics.disconnects.labels(this.gateway, cause);
      this.disconnectsByCause.set(cause, child);
    }
    child.inc();
    this.connections.dec();
  }
}
