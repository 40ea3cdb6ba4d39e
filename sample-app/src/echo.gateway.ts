import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { RealtimeGateway, Replies, SubscribeRawText } from '../../src/index.js';
import { EchoDto, EchoReply } from './echo.dto.js';

/**
 * `/echo` (authenticated): JSON `echo` requests and raw text frames, both answered with
 * `Echo: <text>`. An `echo` whose data is not an {@link EchoDto} gets `VALIDATION_FAILED`.
 */
@RealtimeGateway('/echo')
export class EchoGateway {
  @SubscribeMessage('echo')
  @Replies(EchoReply)
  echo(@MessageBody() body: EchoDto): EchoReply {
    return { message: `Echo: ${body.message}` };
  }

  @SubscribeRawText()
  echoText(@MessageBody() text: string): string {
    return `Echo: ${text}`;
  }
}
