import type { PresenceStore } from '../broker/broker.interface.js';

/**
 * This instance's share of room presence: how many local connections each user has in
 * each room. The broker hears of a user's first connection in a room and of the last one
 * leaving it, nothing in between; later joiners wait for the announcement in flight.
 */
export class LocalPresence {
  /** room → user → local connections of that user in the room */
  private readonly counts = new Map<string, Map<string, number>>();
  /** `room\0user` → the announcement to the broker in flight */
  private readonly announcing = new Map<string, Promise<void>>();

  constructor(
    private readonly store: PresenceStore,
    /** Makes a broker call that cannot reject (a failure is logged). */
    private readonly settle: (work: Promise<void>, what: string) => Promise<void>,
    /**
     * Presence events, when on: told once the broker knows of a user's first connection in
     * a room, or of their last one leaving; and asked who its members were told of.
     */
    private readonly events?: { changedHere(room: string): void; toldOf(room: string): ReadonlySet<string> | undefined },
  ) {}

  /** One more local connection of `sub` in `room`; resolves once others can see the user there. */
  add(room: string, sub: string): Promise<void> {
    let present = this.counts.get(room);
    if (!present) {
      present = new Map();
      this.counts.set(room, present);
    }
    const count = present.get(sub) ?? 0;
    present.set(sub, count + 1);
    const key = presenceKey(room, sub);
    if (count === 0) {
      this.announcing.set(
        key,
        this.settle(this.store.addPresence(room, sub), 'presence').then(() => this.events?.changedHere(room)),
      );
    }
    return this.announcing.get(key) ?? Promise.resolve();
  }

  /**
   * The distinct users present in `room` on any instance, sorted; when the broker does not
   * answer, those with a connection of this instance in it (the failure is logged). With
   * presence events, also the users this instance's members were told of and not yet told
   * as leaving (one who just went, say): a newcomer's list then agrees with the events
   * that follow it.
   */
  async everywhere(room: string): Promise<string[]> {
    let members: string[] | undefined;
    await this.settle(
      this.store.presence(room).then((all) => void (members = all)),
      'presence read',
    );
    const found = members ?? [...(this.counts.get(room)?.keys() ?? [])];
    const told = this.events?.toldOf(room);
    return (told ? [...new Set([...found, ...told])] : found).sort();
  }

  /** One local connection of `sub` fewer in `room`; the last one takes the user out of the room's presence. */
  remove(room: string, sub: string): Promise<void> {
    const present = this.counts.get(room);
    if (!present) {
      return Promise.resolve();
    }
    const count = (present.get(sub) ?? 1) - 1;
    if (count > 0) {
      present.set(sub, count);
      return Promise.resolve();
    }
    present.delete(sub);
    if (present.size === 0) {
      this.counts.delete(room);
    }
    this.announcing.delete(presenceKey(room, sub));
    return this.settle(this.store.removePresence(room, sub), 'presence').then(() => this.events?.changedHere(room));
  }
}

function presenceKey(room: string, sub: string): string {
  return `${room}\u0000${sub}`;
}
