// Compiled by `tsc` in `npm test`, never run: each `@ts-expect-error` line must be a type
// error, or the build fails ("unused @ts-expect-error directive"). It types clients with
// the contract `npm run asyncapi` generates from the sample app (sample-app/contract.ts).
import { RealtimeClient } from '../../src/client/index.js';
import type { ChatContract, ChatMessage, EchoContract, JoinReply } from '../../sample-app/contract.js';

declare const echo: RealtimeClient<EchoContract>;
declare const chat: RealtimeClient<ChatContract>;
declare const untyped: RealtimeClient;
declare const byEvent: RealtimeClient<{ message: { text: string } }>;

/** Requests: the event, its data and its reply come from the contract. */
export async function requests(): Promise<string[]> {
  const reply = await echo.request('echo', { message: 'hi' });
  const text: string = reply.message;
  // @ts-expect-error message is a string
  await echo.request('echo', { message: 1 });
  // @ts-expect-error echo takes data
  await echo.request('echo');
  // @ts-expect-error not a request of /echo
  await echo.request('join', { room: 'general' });
  // @ts-expect-error the reply has no such field
  void reply.room;
  // @ts-expect-error an untyped request is not allowed past the contract
  await echo.request<{ message: string }>('whatever', {});
  const joined: JoinReply = await chat.request('join', { room: 'general', since: { offset: 3, epoch: 'e' } });
  // @ts-expect-error since.offset is a number
  await chat.request('join', { room: 'general', since: { offset: '3', epoch: 'e' } });
  // @ts-expect-error room is required
  await chat.request('send', { text: 'hi' });
  const { offset } = await chat.request('send', { room: 'general', text: 'hi' }, { timeoutMs: 1000 });
  const pong = await chat.request('ping'); // no data needed
  return [text, joined.room, String(offset), String(pong.t)];
}

/** Pushes: `on()` takes the contract's push events, with their data. */
export function pushes(): void {
  chat.on('message', (message, frame) => {
    const typed: ChatMessage = message;
    const from: string = message.from;
    void [typed, from, frame.room, frame.offset];
    // @ts-expect-error no such field in ChatMessage
    void message.nothing;
  });
  // A raw-text answer still comes as `raw`.
  chat.on('raw', (text) => void text.toUpperCase());
  // @ts-expect-error not a push of /chat
  chat.on('presence', () => undefined);
  // @ts-expect-error /echo sends no push
  echo.on('message', () => undefined);
}

/** Clients without a contract keep working as before. */
export async function untypedClients(): Promise<void> {
  const any = await untyped.request<{ n: number }>('anything', { x: 1 });
  const n: number = any.n;
  untyped.on('whatever', (data: unknown) => void data);
  byEvent.on('message', (data) => void data.text);
  // @ts-expect-error an event map types on() as before
  byEvent.on('message', (data) => void data.nothing);
  void n;
}
