import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { connectionOf } from '../gateway/connection-registry.js';
import type { RealtimePrincipal } from './principal.interface.js';

/** The principal of a connected client (the `ws` socket); undefined on public gateways without a token. */
export function principalOf(client: object): RealtimePrincipal | undefined {
  return connectionOf(client)?.principal;
}

/**
 * Parameter decorator: the verified token claims of the connection sending the message.
 *
 * @example handle(@Principal() user: RealtimePrincipal) { return user.sub; }
 */
export const Principal = createParamDecorator((_data: unknown, context: ExecutionContext): RealtimePrincipal | undefined =>
  principalOf(context.switchToWs().getClient<object>()),
);
