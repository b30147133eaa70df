// `npm run bench -- NAME` runs bench/NAME.ts; each benchmark prints its
// headline figure as its last line, `name: value`.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && !['run.js', 'stats.js', 'isolated.js'].includes(f))
  .map((f) => f.slice(0, -3));

const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME, where NAME is one of: ${available.join(', ')}`);
  process.exit(2);
}
const bench = (await import(`./${name}.js`)) as { run: (args: string[]) => Promise<void> };
await bench.run(process.argv.slice(3));
