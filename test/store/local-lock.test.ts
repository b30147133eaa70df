// Waiting for a local store's lock held by another process: the wait does not
// occupy libuv's thread pool (fs and dns.lookup of the same process go on),
// it ends after the configured bound with an error naming the lock file and
// the holder's pid, and a lock released during the wait is taken.

import assert from 'node:assert/strict';
import dns from 'node:dns';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../../store/index.js';
import { LocalStore } from '../../store/local.js';
import { isStrandError } from '../../common/errors.js';
import { killChildren, startChild } from './children.js';

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-lock-'));
  tmpDirs.push(dir);
  return dir;
}
after(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function holdLock(dir: string) {
  const c = startChild(['hold-lock', dir]);
  for (let i = 0; i < 200 && !c.output().includes('locked'); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(c.output().includes('locked'), 'the child took the lock');
  return c;
}

/** Runs fs and dns.lookup calls back to back until `until` settles; returns the slowest one, in ms. */
async function slowestThreadPoolCall(until: Promise<unknown>, scratch: string): Promise<{ slowest: number; calls: number }> {
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  let slowest = 0;
  let calls = 0;
  while (!done) {
    const t0 = Date.now();
    await fs.promises.writeFile(scratch, String(calls));
    await fs.promises.readFile(scratch, 'utf8');
    await fs.promises.stat(scratch);
    await dns.promises.lookup('localhost');
    slowest = Math.max(slowest, Date.now() - t0);
    calls++;
    await new Promise((r) => setTimeout(r, 10));
  }
  return { slowest, calls };
}

describe('local store: waiting for a held lock', function () {
  this.timeout(60000);
  afterEach(() => killChildren());

  it('keeps fs and dns.lookup going while six writes wait, then names the lock file and the holder pid', async () => {
    const dir = tmpDir();
    const url = `local://${dir}`;
    await (await openStore(url)).close();
    const holder = await holdLock(dir);
    // More waiting stores than libuv has threads (4): a wait on a worker thread each would stall everything.
    const stores = await Promise.all(Array.from({ length: 6 }, () => LocalStore.open(dir, url, { lockTimeoutMs: 2500 })));
    try {
      const t0 = Date.now();
      const writes = Promise.allSettled(stores.map((s, i) => s.put(`k${i}`, 'v')));
      const { slowest, calls } = await slowestThreadPoolCall(writes, path.join(dir, 'scratch'));
      const waited = Date.now() - t0;
      assert.ok(calls >= 10, `fs and dns calls kept completing during the wait (${calls})`);
      assert.ok(slowest < 1000, `no fs/dns round took long while the writes waited (slowest ${slowest} ms)`);
      assert.ok(waited >= 2000 && waited < 20000, `the wait was bounded by lockTimeoutMs (${waited} ms)`);
      for (const r of await writes) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as Error;
        assert.ok(isStrandError(err, 'unavailable'), String(err));
        assert.equal(err.retryable, true);
        assert.match(err.message, new RegExp(`${path.join(dir, 'lock')} is still held after 2\\.5 s by pid ${holder.child.pid}\\b`));
      }
      assert.deepEqual(await stores[0]!.list('k'), [], 'nothing was written');
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('takes the lock as soon as the holder lets go, within the bound', async () => {
    const dir = tmpDir();
    const url = `local://${dir}`;
    await (await openStore(url)).close();
    const holder = await holdLock(dir);
    const s = await LocalStore.open(dir, url, { lockTimeoutMs: 20000 });
    try {
      const write = s.put('k', 'v');
      await new Promise((r) => setTimeout(r, 500));
      holder.child.kill('SIGKILL');
      const rev = await write;
      assert.equal((await s.get('k'))!.modRevision, rev);
    } finally {
      await s.close();
    }
  });
});
