import type { INestApplication } from '@nestjs/common';
import type { Socket } from 'node:net';

/** How many writes the server's end of one TCP connection made. */
export interface WriteCounter {
  count: number;
}

/**
 * Counts the writes of the server's end of every TCP connection the app accepts from now
 * on, in order of arrival: the real socket's own `_write` / `_writev`, called through.
 */
export function countServerWrites(app: INestApplication): WriteCounter[] {
  const counters: WriteCounter[] = [];
  app.getHttpServer().on('connection', (socket: Socket & { _writev: Function; _write: Function }) => {
    const counter = { count: 0 };
    counters.push(counter);
    for (const method of ['_writev', '_write'] as const) {
      const original = socket[method];
      socket[method] = function (this: Socket, ...args: unknown[]) {
        counter.count++;
        return original.apply(this, args);
      };
    }
  });
  return counters;
}
