/** The part of a Nest `Logger` a {@link LogThrottle} writes to. */
export interface ThrottledLoggerTarget {
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/** Log levels a {@link LogThrottle} passes on. */
export type ThrottledLevel = 'warn' | 'error' | 'debug';

/** How many lines of one kind are written per interval before the rest are only counted. */
export interface LogThrottleSettings {
  /** Lines of one kind written per interval. Default 20. */
  lines: number;
  /** The interval, in ms. Default 10000. */
  intervalMs: number;
}

interface KindState {
  windowStart: number;
  written: number;
  suppressed: number;
  level: ThrottledLevel;
  summary: NodeJS.Timeout | undefined;
}

/**
 * Bounds the log lines that clients can cause (refused handshakes, policy closes,
 * refused refreshes): per kind of line, the first `lines` of each interval are written,
 * the rest are only counted, and one summary line with the count follows when the
 * interval ends. A flood of bad requests then costs a counter increment per request
 * instead of a formatted line (and a disk that fills up). The message is a function so
 * a suppressed line is never even built.
 */
export class LogThrottle {
  private readonly kinds = new Map<string, KindState>();

  constructor(
    private readonly logger: ThrottledLoggerTarget,
    private readonly settings: Readonly<LogThrottleSettings>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Writes `message()` at `level` unless `kind` has used up this interval's lines. */
  log(level: ThrottledLevel, kind: string, message: () => string): void {
    const now = this.now();
    let state = this.kinds.get(kind);
    if (!state) {
      state = { windowStart: now, written: 0, suppressed: 0, level, summary: undefined };
      this.kinds.set(kind, state);
    } else if (now - state.windowStart >= this.settings.intervalMs && state.suppressed === 0) {
      state.windowStart = now;
      state.written = 0;
    }
    if (state.written < this.settings.lines) {
      state.written++;
      this.logger[level](message());
      return;
    }
    state.suppressed++;
    state.level = level;
    if (!state.summary) {
      const wait = Math.max(0, state.windowStart + this.settings.intervalMs - now);
      const current = state;
      state.summary = setTimeout(() => this.summarize(kind, current), wait);
      state.summary.unref();
    }
  }

  /** Writes the pending summaries now and stops their timers (the application is closing). */
  flush(): void {
    for (const [kind, state] of this.kinds) {
      if (state.summary) {
        clearTimeout(state.summary);
        this.summarize(kind, state);
      }
    }
  }

  private summarize(kind: string, state: KindState): void {
    const seconds = Math.max(1, Math.round((this.now() - state.windowStart) / 1000));
    this.logger[state.level](`${state.suppressed} more "${kind}" lines suppressed in the last ${seconds} s`);
    state.summary = undefined;
    state.suppressed = 0;
    state.written = 0;
    state.windowStart = this.now();
  }
}
