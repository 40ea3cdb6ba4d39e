// What permessage-deflate costs the server: CPU per compressed message and the bytes it
// saves, for chat-like JSON pushes of several sizes, at the default settings and at zlib
// level 6. Each message is compressed on its own (no context takeover), as the adapter
// does; a broadcast pays this once, whatever the number of recipients.
// Run: `npm run bench:extra` (or, after a build, `node dist/bench/compression.js`).
import { resolveCompression } from '../src/options/compression.js';
import { deflateFrame } from '../src/transport/deflate.js';
import { prebuildTextFrame } from '../src/transport/prebuilt-frame.js';

const ROUNDS = 2000;

/** A room push as the sample app's chat sends it, `count` messages in `data` (a history page, say). */
function chatPush(count: number): string {
  const messages = Array.from({ length: count }, (_, i) => ({
    room: 'general',
    from: `user${i % 17}`,
    text: `message number ${i}: ${['hello there', 'see you at the meeting', 'sounds good to me', 'on my way'][i % 4]}`,
    at: new Date(Date.UTC(2026, 11, 1, 9, 0, i)).toISOString(),
  }));
  return JSON.stringify({ offset: 4211, event: 'history', room: 'general', data: messages });
}

const settingsOf = {
  'default (level 1, window 15, memLevel 8)': resolveCompression('compression', true, undefined)!,
  'level 6': resolveCompression('compression', { level: 6 }, undefined)!,
  'level 1, window 11, memLevel 6': resolveCompression('compression', { windowBits: 11, memLevel: 6 }, undefined)!,
};

// Warm-up: zlib and the JIT, before anything is measured.
for (const settings of Object.values(settingsOf)) {
  for (let i = 0; i < 500; i++) {
    deflateFrame(prebuildTextFrame(chatPush(30)), settings, settings.windowBits);
  }
}

console.log(`permessage-deflate, ${ROUNDS} messages each (server CPU per message, compressed size):`);
for (const count of [8, 30, 120]) {
  const text = chatPush(count);
  const size = Buffer.byteLength(text);
  for (const [name, settings] of Object.entries(settingsOf)) {
    let bytes = 0;
    // A new frame each round: nothing is served from a frame's kept compressed form.
    const frames = Array.from({ length: ROUNDS }, () => prebuildTextFrame(text));
    const started = process.cpuUsage();
    for (const frame of frames) {
      bytes = deflateFrame(frame, settings, settings.windowBits)?.bytes.length ?? frame.bytes.length;
    }
    const used = process.cpuUsage(started);
    const micros = (used.user + used.system) / ROUNDS;
    console.log(
      `  ${String(size).padStart(6)} bytes  ${name.padEnd(40)} ${micros.toFixed(1).padStart(7)} µs  ` +
        `${String(bytes).padStart(6)} bytes on the wire (${((bytes / size) * 100).toFixed(0)}%)`,
    );
  }
}
