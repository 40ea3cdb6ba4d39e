import { Controller, Get, Req } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import { type AsyncApiDocument, type AsyncApiInfo, RealtimeContract } from '../../src/index.js';

/** What the sample app's contract says about itself; `host` is where clients connect. */
export function sampleContractInfo(host: string, tls: boolean): AsyncApiInfo {
  return {
    title: 'nestjs-realtime sample app',
    version: '1.0.0',
    description:
      'The echo and chat gateways of the sample app (docs/sample-app.md): protocol v1.2 over WebSocket, in JSON text frames ' +
      '(subprotocol `realtime.v1`) or MessagePack binary frames (`realtime.v1.msgpack`).',
    servers: { sample: { host, protocol: tls ? 'wss' : 'ws', description: 'This server.' } },
  };
}

/** `GET /asyncapi.json`: the AsyncAPI 3.0 document of the gateways, naming the host it was asked on as the server. */
@Controller()
export class ContractController {
  constructor(private readonly contract: RealtimeContract) {}

  @Get('asyncapi.json')
  asyncApi(@Req() request: IncomingMessage): Promise<AsyncApiDocument> {
    return this.contract.asyncApi(sampleContractInfo(request.headers.host ?? 'localhost', request.socket instanceof TLSSocket));
  }
}
