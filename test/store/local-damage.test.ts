// A damaged local store log: corruption is refused with the file and byte
// offset and nothing is truncated; a torn tail (a writer killed mid-append)
// is still dropped; `strand store salvage` copies what is intact and leaves
// the source alone. Also: directories on procfs are refused.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../store/index.js';
import { MAGIC, parseRecords } from '../../store/local-log.js';
import { salvageLocalStore } from '../../store/local.js';
import type { Store } from '../../store/types.js';
import { isStrandError } from '../../common/errors.js';

const strand = fileURLToPath(new URL('../../../bin/strand', import.meta.url));

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-damage-'));
  tmpDirs.push(dir);
  return dir;
}
after(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A store of `n` puts k/000..k/n-1 (one record each); returns each record's [start, end) offset in the file. */
async function filled(dir: string, n: number): Promise<Array<[number, number]>> {
  const s = await openStore(`local://${dir}`);
  for (let i = 0; i < n; i++) await s.put(`k/${String(i).padStart(3, '0')}`, `value-${i}`);
  await s.close();
  const buf = fs.readFileSync(path.join(dir, 'data'));
  const { ends, damage } = parseRecords(buf.subarray(MAGIC.length), MAGIC.length);
  assert.equal(damage, undefined);
  const starts = [MAGIC.length, ...ends.slice(0, -1).map((e) => MAGIC.length + e)];
  return starts.map((st, i) => [st, MAGIC.length + ends[i]!]);
}

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] = b[0]! ^ 0x20;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

function damaged(file: string, offset: number): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(isStrandError(err), String(err));
    assert.match(err.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged`));
    assert.match(err.message, new RegExp(`byte offset ${offset}\\b`));
    assert.match(err.message, /strand store salvage/);
    return true;
  };
}

describe('local store: damaged logs', function () {
  this.timeout(30000);
  const open: Store[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
  });

  it('refuses to open a log with a flipped byte in the middle, naming the file and offset, and truncates nothing', async () => {
    const dir = tmpDir();
    const recs = await filled(dir, 40);
    const file = path.join(dir, 'data');
    // Record 0 is the snapshot; record 20 is the put of k/019.
    const [start, end] = recs[20]!;
    flipByte(file, start + 8 + Math.floor((end - start - 8) / 2));
    const before = sha(file);
    await assert.rejects(openStore(`local://${dir}`), damaged(file, start));
    assert.match((await openStore(`local://${dir}`).catch((e: Error) => e) as Error).message, /valid records follow it/);
    assert.equal(sha(file), before, 'a refused open leaves the file as it was');
  });

  it('refuses reads and writes of a store open since before the damage, and truncates nothing', async () => {
    const dir = tmpDir();
    const url = `local://${dir}`;
    const reader = await openStore(url); // caught up to the snapshot only
    open.push(reader);
    const recs = await filled(dir, 30);
    const file = path.join(dir, 'data');
    const [start] = recs[10]!;
    flipByte(file, start + 2); // the length field: the record no longer fits where it is
    const before = sha(file);
    await assert.rejects(reader.put('x', 'y'), damaged(file, start));
    await assert.rejects(reader.get('k/000'), damaged(file, start));
    assert.equal(sha(file), before, 'no write happened, nothing was cut');
  });

  it('refuses a complete last record that fails its checksum, and a damaged snapshot', async () => {
    const dir = tmpDir();
    const recs = await filled(dir, 5);
    const file = path.join(dir, 'data');
    const [start, end] = recs[recs.length - 1]!;
    flipByte(file, end - 3);
    await assert.rejects(openStore(`local://${dir}`), (err: unknown) => damaged(file, start)(err) && /last record, complete/.test((err as Error).message));

    const dir2 = tmpDir();
    const recs2 = await filled(dir2, 5);
    const file2 = path.join(dir2, 'data');
    flipByte(file2, recs2[0]![0] + 12);
    await assert.rejects(openStore(`local://${dir2}`), damaged(file2, MAGIC.length));
  });

  it('still drops a torn tail (a record cut short, or zeros) and writes on', async () => {
    for (const tail of ['cut', 'zeros'] as const) {
      const dir = tmpDir();
      const recs = await filled(dir, 10);
      const file = path.join(dir, 'data');
      const [start, end] = recs[recs.length - 1]!;
      if (tail === 'cut') {
        // A writer killed in the middle of appending a copy of the last record.
        const whole = fs.readFileSync(file).subarray(start, end);
        fs.appendFileSync(file, whole.subarray(0, whole.length - 4));
      } else {
        fs.appendFileSync(file, Buffer.alloc(4096));
      }
      const s = await openStore(`local://${dir}`);
      open.push(s);
      assert.equal((await s.list('k/')).length, 10, tail);
      await s.put('after', tail);
      assert.equal(fs.statSync(file).size > end, true);
      const again = await openStore(`local://${dir}`);
      open.push(again);
      assert.equal((await again.get('after'))!.value, tail);
      assert.equal((await again.list('k/')).length, 10);
    }
  });

  it('salvage copies every intact record to a new store, reports what it skipped and where, and leaves the source alone', async () => {
    const dir = tmpDir();
    const recs = await filled(dir, 40);
    const file = path.join(dir, 'data');
    const [start, end] = recs[20]!; // k/019, revision 20
    flipByte(file, start + 8 + 4);
    const before = sha(file);
    const beforeNames = fs.readdirSync(dir).sort();
    const out = path.join(tmpDir(), 'salvaged');

    const run = spawnSync(process.execPath, [strand, 'store', 'salvage', '--store', `local://${dir}`, '--out', out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /kept 40 record\(s\), skipped 1 damaged range\(s\)/);
    assert.match(run.stdout, new RegExp(`skipped bytes ${start}-${end - 1} \\(${end - start} bytes\\): the record there fails its checksum`));
    assert.match(run.stdout, /lost revision 20: /);
    assert.match(run.stdout, /revision 40, 39 key\(s\)/);
    assert.equal(sha(file), before, 'the source log is unchanged');
    assert.deepEqual(fs.readdirSync(dir).sort(), beforeNames, 'nothing was added to the source directory');

    const s = await openStore(`local://${out}`);
    open.push(s);
    const keys = (await s.list('k/')).map((kv) => kv.key);
    assert.equal(keys.length, 39);
    assert.ok(!keys.includes('k/019'));
    assert.equal((await s.get('k/039'))!.value, 'value-39');
    assert.equal(await s.revision(), 40);
    assert.ok((await s.put('k/019', 'again')) > 40, 'the new store takes writes');

    // The report as a function, and refusals.
    const out2 = path.join(tmpDir(), 'again');
    const r = salvageLocalStore(dir, out2);
    assert.equal(r.kept, 40);
    assert.deepEqual(r.skipped.map((x) => x.offset), [start]);
    assert.deepEqual(r.missingRevisions, [[20, 20]]);
    assert.equal(r.snapshotLost, false);
    const busy = spawnSync(process.execPath, [strand, 'store', 'salvage', '--store', `local://${dir}`, '--out', out], { encoding: 'utf8' });
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /exists and is not empty/);
    assert.throws(() => salvageLocalStore(dir, path.join(dir, 'inside')), /must be outside/);
    assert.equal(sha(file), before);
  });

  it('salvage of a log whose snapshot is lost keeps the changes after it and says so', async () => {
    const dir = tmpDir();
    const recs = await filled(dir, 8);
    flipByte(path.join(dir, 'data'), recs[0]![0] + 10);
    const r = salvageLocalStore(dir, path.join(tmpDir(), 'out'));
    assert.equal(r.snapshotLost, true);
    assert.equal(r.kept, 8);
    assert.equal(r.keys, 8);
    assert.deepEqual(r.skipped.map((x) => x.offset), [MAGIC.length]);
  });
});

describe('local store: directories on kernel file systems', function () {
  this.timeout(10000);
  it('refuses a directory under /proc or /sys, or reached through a symlink into /proc, at once', async () => {
    for (const dir of ['/proc/strand-store', '/proc/self/strand', '/sys/strand']) {
      await assert.rejects(openStore(`local://${dir}`), (err: unknown) => {
        assert.ok(isStrandError(err, 'invalid'), String(err));
        assert.match(err.message, new RegExp(`${dir} is under /(proc|sys), a kernel file system`));
        return true;
      });
    }
    const link = path.join(tmpDir(), 'link');
    fs.symlinkSync('/proc/self', link);
    await assert.rejects(openStore(`local://${link}/store`), /is on procfs \(through .*link\)/);
    assert.throws(() => salvageLocalStore(tmpDir(), '/proc/strand-out'), /under \/proc/);
  });
});
