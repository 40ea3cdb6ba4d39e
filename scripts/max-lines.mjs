// Fails when a TypeScript file under the given folder has more than the given number of
// lines: one responsibility per file. Usage: node scripts/max-lines.mjs src 400
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [root = 'src', limitText = '400'] = process.argv.slice(2);
const limit = Number(limitText);
const tooLong = [];
for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
  if (entry.isFile() && entry.name.endsWith('.ts')) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    const lines = readFileSync(path, 'utf8').split('\n').length - 1;
    if (lines > limit) {
      tooLong.push(`${path}: ${lines} lines`);
    }
  }
}
if (tooLong.length > 0) {
  console.error(`Files over ${limit} lines (split them by responsibility):\n  ${tooLong.join('\n  ')}`);
  process.exit(1);
}
console.log(`every .ts file under ${root} has at most ${limit} lines`);
