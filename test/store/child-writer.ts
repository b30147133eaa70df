// A separate OS process that writes to a store, for the tests that need real
// concurrency or a real crash. Usage:
//   node child-writer.js incr URL KEY COUNT   CAS-increments KEY COUNT times
//   node child-writer.js stream URL PREFIX    writes until killed, printing "ack N" per durable write
//   node child-writer.js puts URL PREFIX COUNT  plain puts PREFIX/0..COUNT-1, then exits
//   node child-writer.js hold-lock DIR        takes DIR/lock, prints "locked", holds it until killed
import fs from 'node:fs';
import path from 'node:path';
import { openStore } from '../../store/index.js';
import { tryLock } from '../../common/file-lock.js';
import { isStrandError } from '../../common/errors.js';

const [mode, url, arg, countText] = process.argv.slice(2);
if (mode === 'hold-lock') {
  const fd = fs.openSync(path.join(url!, 'lock'), 'a');
  if (!tryLock(fd, true)) throw new Error(`${url}/lock is held already`);
  process.stdout.write('locked\n');
  setInterval(() => undefined, 1 << 30);
  await new Promise(() => undefined);
}
const store = await openStore(url);

async function increment(key: string): Promise<void> {
  for (;;) {
    const cur = await store.get(key);
    const next = String(Number(cur?.value ?? '0') + 1);
    try {
      await store.put(key, next, { expectRevision: cur?.modRevision ?? 0 });
      return;
    } catch (err) {
      if (!isStrandError(err, 'conflict')) throw err;
    }
  }
}

if (mode === 'incr') {
  for (let i = 0; i < Number(countText); i++) await increment(arg!);
} else if (mode === 'puts') {
  for (let i = 0; i < Number(countText); i++) await store.put(`${arg}/${i}`, String(i));
} else if (mode === 'stream') {
  // Each step is a two-key transaction, so a crash can be checked for
  // atomicity as well as durability: a/N and b/N exist together or not at all.
  for (let i = 0; ; i++) {
    await store.txn([], [
      { op: 'put', key: `${arg}/a/${String(i).padStart(8, '0')}`, value: String(i) },
      { op: 'put', key: `${arg}/b/${String(i).padStart(8, '0')}`, value: String(i) },
      { op: 'put', key: `${arg}/last`, value: String(i) },
    ]);
    process.stdout.write(`ack ${i}\n`);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
await store.close();
process.stdout.write('done\n');
