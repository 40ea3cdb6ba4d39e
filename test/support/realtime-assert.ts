import assert from 'node:assert/strict';
import { type RealtimeTestClient, RealtimeTestError, type TestPush } from '../../src/testing/index.js';

/**
 * The next push of `event`, with no other push received and left untaken: what the
 * frame-level client's "the next frame is this push" checked.
 */
export async function only<T>(client: RealtimeTestClient, event: string): Promise<TestPush<T>> {
  const push = await client.next<T>(event);
  assert.deepEqual(client.pendingPushes(), [], `pushes besides "${event}"`);
  return push;
}

/**
 * For `assert.rejects`: an error reply with `code`; when `exactly` is given, with that
 * message and those details (none when it has none), as the error frame's whole `data`.
 */
export function refusedWith(code: string, exactly?: { message: string; details?: unknown[] }): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof RealtimeTestError, `not an error reply: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (exactly) {
      assert.equal(error.message, `${code}: ${exactly.message}`);
      assert.deepEqual(error.details, exactly.details);
    }
    return true;
  };
}
