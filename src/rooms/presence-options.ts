/** `RealtimeModuleOptions.presence`: presence events. */
export interface RealtimePresenceOptions {
  /**
   * Tell a room's members when a user joins it (their first connection in it, on any
   * instance) and when they leave it (their last one): a push
   * `{"event": "presence", "room", "data": {"joined": sub}}` or `{"left": sub}`. Default false.
   */
  events?: boolean;
  /**
   * How long a change settles before it is told, and how long a user must stay gone to be
   * told as leaving, in ms: one who leaves and comes back within it (a reconnection) causes
   * no event. Default 1000.
   */
  debounceMs?: number;
  /**
   * How often each instance compares its rooms' presence again, in ms, whatever it heard:
   * this catches the users of an instance that died (they leave once the broker expires
   * its entries) and changes told while the broker was unreachable. At least 100. Default 15000.
   */
  resyncMs?: number;
}
