import { applyDecorators, type CanActivate, type ExecutionContext, Injectable, SetMetadata, UseGuards } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { principalOf } from './principal.js';

const REQUIRED_ROLES = 'realtime:required-roles';

/** Guard behind {@link RequireRoles}: the connection's token must carry every listed role. */
@Injectable()
export class RolesGuard implements CanActivate {
  private readonly reflector = new Reflector();

  canActivate(context: ExecutionContext): boolean {
    const required =
      this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_ROLES, [context.getHandler(), context.getClass()]) ?? [];
    const roles = principalOf(context.switchToWs().getClient<object>())?.roles;
    return required.every((role) => Array.isArray(roles) && roles.includes(role));
  }
}

/**
 * Requires roles (from the token's `roles` claim) for a handler or a whole gateway.
 * A message without them is answered with a `FORBIDDEN` error frame; the connection stays.
 */
export function RequireRoles(...roles: string[]): ClassDecorator & MethodDecorator {
  return applyDecorators(SetMetadata(REQUIRED_ROLES, roles), UseGuards(RolesGuard));
}
