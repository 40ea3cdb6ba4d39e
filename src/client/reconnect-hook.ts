import { ClientErrorCode, describe, RealtimeClientError } from './client-error.js';
import type { ReconnectContext } from './client-options.js';
import { type ClientClock, withinDeadline } from './clock.js';

/** The default of `onReconnectTimeoutMs`. */
export const DEFAULT_RECONNECT_HOOK_TIMEOUT_MS = 30_000;

/**
 * Runs the application's `onReconnect` for at most `ms` (default 30000): its failure is reported as
 * `DISCONNECTED` ("onReconnect failed: …"), its running late as `TIMEOUT`; either way the
 * connection then opens, so a hook that never settles cannot hold the client back for good.
 */
export async function runReconnectHook(
  hook: (context: ReconnectContext) => void | Promise<void>,
  context: ReconnectContext,
  clock: ClientClock,
  ms: number = DEFAULT_RECONNECT_HOOK_TIMEOUT_MS,
  report: { error(error: RealtimeClientError): void },
): Promise<void> {
  const late = new RealtimeClientError(ClientErrorCode.TIMEOUT, `onReconnect did not finish within ${ms} ms`);
  try {
    await withinDeadline(
      clock,
      () => hook(context),
      ms,
      () => late,
    );
  } catch (error) {
    report.error(error === late ? late : new RealtimeClientError(ClientErrorCode.DISCONNECTED, `onReconnect failed: ${describe(error)}`));
  }
}
