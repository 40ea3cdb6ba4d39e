import type { BrokerResilience } from './broker-resilience.js';
import type { RedisConnection, RedisLink } from './redis-link.js';

/**
 * The channels of a `RedisBroker`'s subscriber connection: those wanted (rooms and users
 * with local members), and those Redis confirmed on the current connection (on a cluster:
 * those handed to ioredis, which keeps them).
 */
export class RedisSubscriptions {
  /** The channels this instance wants messages of. */
  readonly wanted = new Set<string>();
  private readonly subscribed = new Set<string>();
  /** Counts the subscriber connection's drops: a reply from before one says nothing of now. */
  private generation = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly resilience: BrokerResilience,
  ) {}

  /** The subscriber connection closed: the next one has no subscription (on one server). */
  dropped(): void {
    this.subscribed.clear();
    this.generation++;
  }

  /**
   * Brings the subscriber connection's channels in line with the wanted ones: all of them
   * on a new connection, what changed meanwhile after a stall. Rejects when Redis did not
   * answer; then the resilience tries again.
   */
  async restore(sub: RedisConnection): Promise<void> {
    const generation = this.generation;
    // Channels added or dropped while a SUBSCRIBE is in flight are caught up by the next round.
    while (!sameSet(this.subscribed, this.wanted) && generation === this.generation) {
      const wanted = new Set(this.wanted);
      const added = [...wanted].filter((channel) => !this.subscribed.has(channel));
      const dropped = [...this.subscribed].filter((channel) => !wanted.has(channel));
      if (added.length > 0) {
        await this.change('subscribe', added, sub);
      }
      if (dropped.length > 0) {
        await this.change('unsubscribe', dropped, sub);
      }
    }
  }

  /**
   * Subscribes or unsubscribes `channels` on `sub`, and records it. On one server it counts
   * once Redis answered on the connection it was asked on (else the next 'ready' restores
   * everything), even past the command's deadline (the call then rejected): a late
   * SUBSCRIBE still took effect, and what changed while it was late (a room left
   * meanwhile) is brought in line when it answers. On a cluster, ioredis records the change
   * as it sends it and repeats it whenever a shard's subscriber comes back, so it counts at
   * once, and a shard that does not answer now fails nothing.
   */
  async change(kind: 'subscribe' | 'unsubscribe', channels: readonly string[], sub: RedisConnection): Promise<void> {
    const names = channels.map((channel) => this.link.channelName(channel));
    const call = (): Promise<unknown> => (kind === 'subscribe' ? this.link.subscribe(sub, names) : this.link.unsubscribe(sub, names));
    const record = (): void =>
      channels.forEach((channel) => (kind === 'subscribe' ? this.subscribed.add(channel) : this.subscribed.delete(channel)));
    if (this.link.keepsSubscriptions) {
      record();
      await this.resilience.attempt(kind, call).catch(() => undefined);
      return;
    }
    const generation = this.generation;
    let late = false;
    const answered = (): void => {
      if (generation !== this.generation) {
        return;
      }
      record();
      if (late && this.resilience.state === 'ok' && this.resilience.answering) {
        void this.restore(sub).catch(() => undefined); // judged by the resilience
      }
    };
    await this.resilience
      .attempt(kind, () => call().then(answered))
      .catch((error: unknown) => {
        late = true;
        throw error;
      });
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}
