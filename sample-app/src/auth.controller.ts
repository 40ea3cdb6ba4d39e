import { BadRequestException, Body, Controller, HttpCode, Post } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';

/** Lifetime of the demo tokens, in seconds. */
export const DEMO_TOKEN_TTL_SECONDS = 3600;
const USERNAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * DEMO LOGIN — NOT AUTHENTICATION. `POST /auth/token` hands a token to anyone for any
 * username, so that the sample app can be tried. A real application issues tokens from
 * its identity provider; the gateways accept any HS256 token signed with JWT_SECRET
 * that carries `sub` and `exp`.
 */
@Controller('auth')
export class DemoAuthController {
  constructor(private readonly jwt: JwtService) {}

  @Post('token')
  @HttpCode(200)
  issue(@Body() body: unknown): { access_token: string; token_type: 'Bearer'; expires_in: number } {
    const username = (body as { username?: unknown } | undefined)?.username;
    if (typeof username !== 'string' || !USERNAME.test(username)) {
      throw new BadRequestException('username must be 1 to 64 characters of A-Z, a-z, 0-9, _ . -');
    }
    const accessToken = this.jwt.sign({ sub: username }, { expiresIn: DEMO_TOKEN_TTL_SECONDS });
    return { access_token: accessToken, token_type: 'Bearer', expires_in: DEMO_TOKEN_TTL_SECONDS };
  }
}
