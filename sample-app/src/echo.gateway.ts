import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { ErrorCode, RealtimeError, RealtimeGateway, SubscribeRawText } from '../../src/index.js';

/** Body of the `echo` event. */
export interface EchoBody {
  message: string;
}

/** `/echo` (authenticated): JSON `echo` requests and raw text frames, both answered with `Echo: <text>`. */
@RealtimeGateway('/echo')
export class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() body: unknown): EchoBody {
    return { message: `Echo: ${checkEchoBody(body).message}` };
  }

  @SubscribeRawText()
  echoText(@MessageBody() text: string): string {
    return `Echo: ${text}`;
  }
}

function checkEchoBody(body: unknown): EchoBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RealtimeError(ErrorCode.VALIDATION_FAILED, 'validation failed', [
      { property: 'data', constraints: { isObject: 'data must be an object' } },
    ]);
  }
  const extra = Object.keys(body).filter((key) => key !== 'message');
  const message = (body as { message?: unknown }).message;
  const details = extra.map((property) => ({
    property,
    constraints: { whitelistValidation: `property ${property} should not exist` },
  }));
  if (typeof message !== 'string' || message.length < 1 || message.length > 1000) {
    details.unshift({
      property: 'message',
      constraints: { isLength: 'message must be a string of 1 to 1000 characters' } as never,
    });
  }
  if (details.length > 0) {
    throw new RealtimeError(ErrorCode.VALIDATION_FAILED, 'validation failed', details);
  }
  return body as EchoBody;
}
