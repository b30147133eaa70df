// The local backend: the shared conformance suite (with default and with tiny
// compaction thresholds, so every cross-process path also runs across
// compactions), plus what only the embedded store has: kill -9 safety,
// compaction, and a flat cost per durable write.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../../store/index.js';
import { LocalStore } from '../../store/local.js';
import type { Store, WatchEvent } from '../../store/types.js';
import { isStrandError } from '../../common/errors.js';
import { storeConformance } from './conformance.js';
import { killChildren, startChild } from './children.js';

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-store-'));
  tmpDirs.push(dir);
  return dir;
}
after(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

for (const [label, query] of [['local', ''], ['local, compacting every 1 KiB', '?compactBytes=1024']] as const) {
  storeConformance(label, {
    server: false,
    setup: async () => {
      const url = `local://${tmpDir()}/store${query}`;
      return { url, open: () => openStore(url) };
    },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('local store', function () {
  const stores: Store[] = [];
  afterEach(async () => {
    await killChildren();
    for (const s of stores.splice(0)) await s.close();
  });
  async function open(url: string): Promise<Store> {
    const s = await openStore(url);
    stores.push(s);
    return s;
  }

  it('survives kill -9 at random moments with every acknowledged write intact', async function () {
    this.timeout(180000);
    const dir = tmpDir();
    // Small compaction threshold so kills also land inside compactions.
    const url = `local://${dir}?compactBytes=4096`;
    let acked = -1;
    for (let round = 0; round < 25; round++) {
      const { child, output } = startChild(['stream', url, `crash${round}`]);
      // Let it start, then kill at a random moment in its stream of writes.
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (output().includes('ack') || child.exitCode !== null) {
            clearInterval(check);
            resolve();
          }
        }, 5);
      });
      await sleep(Math.random() * 150);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      const acks = [...output().matchAll(/ack (\d+)/g)].map((m) => Number(m[1]));
      const roundMax = acks.length ? Math.max(...acks) : -1;

      const s = await openStore(url);
      try {
        const pre = `crash${round}`;
        const as = (await s.list(`${pre}/a/`)).map((kv) => Number(kv.value));
        const bs = (await s.list(`${pre}/b/`)).map((kv) => Number(kv.value));
        const last = Number((await s.get(`${pre}/last`))?.value ?? -1);
        // Writes are sequential, so the store holds exactly 0..last; every
        // acknowledged one is there, and at most one more (committed, killed
        // before it could say so).
        assert.deepEqual(as, Array.from({ length: last + 1 }, (_, i) => i), `round ${round}: a/ keys are 0..${last}`);
        assert.deepEqual(bs, as, `round ${round}: each transaction wrote a/N and b/N together`);
        assert.ok(last === roundMax || last === roundMax + 1, `round ${round}: last ${last}, highest ack ${roundMax}`);
        // The store is writable afterwards (a torn tail, if any, is cut off).
        const rev = await s.put(`${pre}/check`, 'ok');
        assert.equal((await s.get(`${pre}/check`))!.modRevision, rev);
      } finally {
        await s.close();
      }
      acked = Math.max(acked, roundMax);
    }
    assert.ok(acked > 0, 'the children made progress');
  });

  it('compacts the log and keeps history, data and other processes consistent', async function () {
    this.timeout(60000);
    const dir = tmpDir();
    const url = `local://${dir}?compactBytes=2048`;
    // History kept: 32 KiB of keys and values, some 700 of these revisions.
    const opts = { compactBytes: 2048, historyBytes: 32 << 10 };
    const openSmall = async () => {
      const s = await LocalStore.open(dir, url, opts);
      stores.push(s);
      return s;
    };
    const a = await openSmall();
    const b = await openSmall(); // a second, independent reader of the same directory
    const first = await a.put('k/0', 'v0');
    const events: WatchEvent[] = [];
    const w = await b.watch('k/', { fromRevision: first }, (e) => events.push(e));
    let last = first;
    // Several times the revisions a compaction keeps history for; pausing now
    // and then lets b's poll keep up, as a live watcher in another process would.
    for (let i = 1; i < 3000; i++) {
      last = await a.put(`k/${i % 50}`, `v${i}`);
      if (i % 200 === 0) await sleep(120);
    }
    const size = fs.statSync(path.join(dir, 'data')).size;
    assert.ok(size < 256 * 1024, `log stays bounded by compaction (${size} bytes)`);
    assert.equal(await b.revision(), last);
    const listed = await b.list('k/');
    assert.equal(listed.length, 50);
    for (let j = 0; j < 50; j++) {
      const i = 2950 + j;
      assert.equal((await b.get(`k/${i % 50}`))!.value, `v${i}`);
    }
    for (let t = 0; t < 100 && events.length < 3000; t++) await sleep(50);
    await w.cancel();
    assert.equal(events.length, 3000, 'the watcher saw every change through the compactions');
    assert.deepEqual(events.map((e) => (e.type === 'put' ? e.kv.value : '')), Array.from({ length: 3000 }, (_, i) => `v${i}`));

    // A fresh open reads the compacted file.
    const c = await openSmall();
    assert.deepEqual(await c.list('k/'), listed);
    // Watching from before the kept history is refused with a clear error.
    await assert.rejects(c.watch('k/', { fromRevision: 1 }, () => undefined), (err: unknown) => isStrandError(err, 'invalid'));

    // A watcher that falls further behind than the kept history (c does not
    // poll during this tight loop) still converges on the true state.
    const seen = new Map<string, string>();
    const wc = await c.watch('k/', {}, (e) => (e.type === 'put' ? seen.set(e.kv.key, e.kv.value) : seen.delete(e.key)));
    for (const kv of listed) seen.set(kv.key, kv.value);
    for (let i = 0; i < 2500; i++) await a.put(`k/${i % 60}`, `w${i}`);
    await a.delete('k/7');
    const final = await a.list('k/');
    for (let t = 0; t < 100 && seen.get('k/59') !== 'w2459'; t++) await sleep(50);
    await sleep(200);
    await wc.cancel();
    assert.deepEqual([...seen].sort(([x], [y]) => (x < y ? -1 : 1)), final.map((kv) => [kv.key, kv.value]));
  });

  it('bounds the history a compaction keeps by bytes, so large values rewritten often keep the file small', async function () {
    this.timeout(60000);
    const dir = tmpDir();
    const url = `local://${dir}?compactBytes=1048576`;
    const s = await open(url);
    // One 64 KiB key rewritten 300 times (as a registry kept in one key was):
    // a thousand revisions of history would be 19 MB; 1 MiB of it is 16.
    const big = (i: number) => `${i}:`.padEnd(64 << 10, 'x');
    let last = 0;
    for (let i = 0; i < 300; i++) last = await s.put('reg', big(i));
    const size = fs.statSync(path.join(dir, 'data')).size;
    assert.ok(size < 4 << 20, `the log stays near compactBytes + 1 MiB of history (${size} bytes)`);
    // Recent history is still there to watch from...
    const events: WatchEvent[] = [];
    const w = await s.watch('reg', { fromRevision: last - 3 }, (e) => events.push(e));
    for (let t = 0; t < 100 && events.length < 4; t++) await sleep(20);
    await w.cancel();
    assert.deepEqual(events.map((e) => (e.type === 'put' ? e.kv.value.split(':')[0] : '')), ['296', '297', '298', '299']);
    // ...and older revisions are refused as etcd refuses compacted ones.
    await assert.rejects(s.watch('reg', { fromRevision: 1 }, () => undefined), (err: unknown) => {
      assert.ok(isStrandError(err, 'invalid'), String(err));
      assert.match(err.message, /watch "reg": required revision 1 has been compacted .*; list and watch from the current revision/);
      return true;
    });
    // A fresh reader agrees.
    const fresh = await open(url);
    assert.equal((await fresh.get('reg'))!.value, big(299));
    await assert.rejects(fresh.watch('reg', { fromRevision: 1 }, () => undefined), /has been compacted/);
  });

  it('keeps the cost of a durable write flat as the store grows', async function () {
    this.timeout(180000);
    const s = await open(`local://${tmpDir()}`);
    // Shaped like an address allocation: scan a narrow block of keys, then
    // one durable compare-and-swap transaction, 20,000 times.
    const n = 20000;
    const times: number[] = [];
    const hex = (i: number) => i.toString(16).padStart(8, '0');
    for (let i = 0; i < n; i++) {
      const key = `ip/${hex(i)}`;
      const t0 = process.hrtime.bigint();
      const block = await s.list(`ip/${hex(i).slice(0, -2)}`);
      assert.ok(block.length <= 255);
      await s.txn([{ key, absent: true }], [{ op: 'put', key, value: JSON.stringify({ owner: `container-${i}`, ifname: 'eth0' }) }]);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    const firstMed = median(times.slice(0, 100));
    const lastMed = median(times.slice(-100));
    console.log(`      durable local txn: median ${median(times).toFixed(3)} ms; first 100 ${firstMed.toFixed(3)} ms, last 100 ${lastMed.toFixed(3)} ms`);
    assert.ok(lastMed <= 2 * firstMed + 0.2, `last 100 (${lastMed.toFixed(3)} ms) within 2x the first 100 (${firstMed.toFixed(3)} ms)`);
    assert.equal((await s.list('ip/')).length, n);
  });

  it('keeps working with two stores on one directory in one process', async () => {
    const url = `local://${tmpDir()}`;
    const a = await open(url);
    const b = await open(url);
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).put(`both/${i}`, String(i))));
    assert.equal((await a.list('both/')).length, 50);
    assert.equal((await b.list('both/')).length, 50);
    assert.equal(await a.revision(), await b.revision());
  });

  it('rejects a directory that holds something else', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'data'), 'not a store');
    await assert.rejects(openStore(`local://${dir}`), /not a strand store log/);
  });
});
