import { HeartbeatMonitor, type HeartbeatTiming } from './heartbeat-monitor.js';

/** Heartbeat figures of an adapter (see {@link HeartbeatRegistry.stats}). */
export interface HeartbeatStats {
  /** Connections watched. */
  watched: number;
  /** Connections terminated for silence. */
  reaped: number;
  /** Sweep timers running: one per distinct timing, never one per connection. */
  timers: number;
}

/** The heartbeat monitors of one adapter: one per distinct timing, shared by the gateways that use it. */
export class HeartbeatRegistry {
  private readonly monitors = new Map<string, HeartbeatMonitor>();

  /** The monitor of `timing`, made on first use. */
  monitorFor(timing: HeartbeatTiming): HeartbeatMonitor {
    const key = `${timing.intervalMs}:${timing.timeoutMs}`;
    let monitor = this.monitors.get(key);
    if (!monitor) {
      monitor = new HeartbeatMonitor(timing);
      this.monitors.set(key, monitor);
    }
    return monitor;
  }

  /** The figures of every monitor together. */
  stats(): HeartbeatStats {
    const stats: HeartbeatStats = { watched: 0, reaped: 0, timers: 0 };
    for (const monitor of this.monitors.values()) {
      stats.watched += monitor.size;
      stats.reaped += monitor.reaped;
      stats.timers += monitor.running ? 1 : 0;
    }
    return stats;
  }

  /** Stops every sweep (the adapter is being disposed). */
  stop(): void {
    for (const monitor of this.monitors.values()) {
      monitor.stop();
    }
  }
}
