/**
 * Why a connection ended:
 * - `client`: the client closed it;
 * - `lost`: it died without a close handshake (network loss, client killed);
 * - `shutdown`: the server is shutting down;
 * - `policy-violation`: the server closed it for abuse (e.g. an invalid-frame flood);
 * - `message-too-big`: a frame exceeded `maxPayload`;
 * - `token-expired`: the token expired (close 4001);
 * - `heartbeat-timeout`: nothing arrived from the client within the heartbeat's interval
 *   plus timeout, so the server terminated it (code 1006);
 * - `slow-consumer`: the client did not read while the server wrote (close 4008);
 * - `kicked`: the application disconnected its user (`RealtimeHub.disconnectUser`, close 4003);
 * - `server`: the server closed it for another reason.
 */
export type DisconnectCause =
  | 'client'
  | 'lost'
  | 'shutdown'
  | 'policy-violation'
  | 'message-too-big'
  | 'token-expired'
  | 'heartbeat-timeout'
  | 'kicked'
  | 'slow-consumer'
  | 'server';

/** Second argument of a gateway's `handleDisconnect(client, reason)`. */
export interface DisconnectReason {
  /** The close code of the connection (1006 when it died without a close frame). */
  readonly code: number;
  /** The close reason text, possibly empty. */
  readonly reason: string;
  /** Why the connection ended. */
  readonly cause: DisconnectCause;
}

/**
 * A gateway's disconnect hook with this plugin's reason. Use it instead of Nest's
 * `OnGatewayDisconnect`, whose `reason` is typed as a string. It runs for every
 * connection however it ended, including ones that died without a close frame.
 */
export interface OnRealtimeDisconnect<TClient = import('ws').WebSocket> {
  /** Called once when the connection has ended. */
  handleDisconnect(client: TClient, reason: DisconnectReason): unknown;
}
