// The one behaviour suite every store backend must pass. Each backend's test
// file calls storeConformance() with a factory; tests use their own random
// key prefix so they never depend on what other tests wrote.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Store, WatchEvent } from '../../store/types.js';
import { StrandError, isStrandError } from '../../common/errors.js';
import { killChildren, runChild } from './children.js';

export interface BackendUnderTest {
  /** A URL any process can open the same store with. */
  url: string;
  open(): Promise<Store>;
  /** Takes the server away (data kept) and brings it back on the same address. */
  outage?: { stop(): Promise<void>; start(): Promise<void> };
}

export interface ConformanceOptions {
  /** Started in before(), torn down by the backend's own after() hook. */
  setup: () => Promise<BackendUnderTest>;
  /** Whether the backend is a server that can go away (setup then provides `outage`). */
  server: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, code: StrandError['code']): Promise<StrandError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isStrandError(err), `expected StrandError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected StrandError ${code}, but it succeeded`);
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: unknown;
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(50);
  }
}

function eventKey(e: WatchEvent): string {
  return e.type === 'put' ? e.kv.key : e.key;
}
function eventRev(e: WatchEvent): number {
  return e.type === 'put' ? e.kv.modRevision : e.modRevision;
}

export function storeConformance(name: string, options: ConformanceOptions): void {
  describe(`store conformance: ${name}`, function () {
    let backend: BackendUnderTest;
    let store: Store;
    let p: string; // this test's key prefix
    const watchers: Array<{ cancel(): Promise<void> }> = [];
    const extraStores: Store[] = [];

    before(async function () {
      this.timeout(60000);
      backend = await options.setup();
      store = await backend.open();
    });
    after(async () => {
      await killChildren();
      await store?.close();
    });
    beforeEach(() => {
      p = `t-${randomBytes(4).toString('hex')}/`;
    });
    afterEach(async () => {
      await killChildren();
      for (const w of watchers.splice(0)) await w.cancel();
      for (const s of extraStores.splice(0)) await s.close();
    });

    it('gets, puts, deletes and lists', async () => {
      assert.equal(await store.get(`${p}a`), undefined);
      const r1 = await store.put(`${p}a`, 'one');
      assert.ok(r1 > 0);
      const kv = await store.get(`${p}a`);
      assert.deepEqual(kv, { key: `${p}a`, value: 'one', createRevision: r1, modRevision: r1 });
      const r2 = await store.put(`${p}a`, 'two');
      assert.ok(r2 > r1, 'revisions increase');
      assert.deepEqual(await store.get(`${p}a`), { key: `${p}a`, value: 'two', createRevision: r1, modRevision: r2 });
      await store.put(`${p}c`, 'c');
      await store.put(`${p}b/x`, 'bx');
      await store.put(`${p.slice(0, -1)}~other`, 'not under the prefix');
      const listed = await store.list(p);
      assert.deepEqual(listed.map((k) => [k.key, k.value]), [[`${p}a`, 'two'], [`${p}b/x`, 'bx'], [`${p}c`, 'c']]);
      assert.ok((await store.revision()) >= r2);
      assert.equal(await store.delete(`${p}a`), true);
      assert.equal(await store.delete(`${p}a`), false, 'deleting a missing key succeeds and says so');
      assert.equal(await store.get(`${p}a`), undefined);
      assert.deepEqual((await store.list(p)).map((k) => k.key), [`${p}b/x`, `${p}c`]);
      assert.deepEqual(await store.list(`${p}nothing/`), []);
      // A key re-created after deletion gets a new createRevision.
      const r3 = await store.put(`${p}a`, 'again');
      assert.equal((await store.get(`${p}a`))!.createRevision, r3);
      await rejectsWith(store.get(''), 'invalid');
    });

    it('compare-and-swap puts and deletes', async () => {
      const k = `${p}cas`;
      await rejectsWith(store.put(k, 'x', { expectRevision: 5 }), 'conflict');
      const r1 = await store.put(k, 'v1', { expectRevision: 0 });
      const err = await rejectsWith(store.put(k, 'v2', { expectRevision: 0 }), 'conflict');
      assert.equal(err.retryable, true);
      await rejectsWith(store.put(k, 'v2', { expectRevision: r1 + 1000 }), 'conflict');
      assert.equal((await store.get(k))!.value, 'v1', 'a failed CAS changes nothing');
      const r2 = await store.put(k, 'v2', { expectRevision: r1 });
      await rejectsWith(store.put(k, 'v3', { expectRevision: r1 }), 'conflict');
      await rejectsWith(store.delete(k, { expectRevision: r1 }), 'conflict');
      assert.equal((await store.get(k))!.value, 'v2');
      assert.equal(await store.delete(k, { expectRevision: r2 }), true);
      assert.equal(await store.get(k), undefined);
    });

    it('applies multi-key transactions all or nothing', async () => {
      const r0 = await store.put(`${p}x`, '1');
      const res = await store.txn(
        [{ key: `${p}x`, modRevision: r0 }, { key: `${p}new`, absent: true }],
        [
          { op: 'put', key: `${p}x`, value: '2' },
          { op: 'put', key: `${p}new`, value: 'n' },
          { op: 'put', key: `${p}y`, value: 'y' },
        ],
      );
      assert.ok(res.revision > r0);
      for (const key of ['x', 'new', 'y']) assert.equal((await store.get(`${p}${key}`))!.modRevision, res.revision, `${key} written at the txn revision`);

      // One failing check among passing ones: nothing is applied.
      const before = await store.list(p);
      await rejectsWith(
        store.txn(
          [{ key: `${p}x`, present: true }, { key: `${p}x`, modRevision: r0 }],
          [{ op: 'delete', key: `${p}x` }, { op: 'put', key: `${p}z`, value: 'z' }],
        ),
        'conflict',
      );
      await rejectsWith(store.txn([{ key: `${p}new`, absent: true }], [{ op: 'put', key: `${p}z`, value: 'z' }]), 'conflict');
      await rejectsWith(store.txn([{ key: `${p}nope`, present: true }], [{ op: 'put', key: `${p}z`, value: 'z' }]), 'conflict');
      assert.deepEqual(await store.list(p), before);

      const res2 = await store.txn(
        [{ key: `${p}nope`, modRevision: 0 }, { key: `${p}y`, present: true }],
        [{ op: 'delete', key: `${p}x` }, { op: 'delete', key: `${p}y` }],
      );
      assert.ok(res2.revision > res.revision);
      assert.deepEqual((await store.list(p)).map((k) => k.key), [`${p}new`]);
      await rejectsWith(store.txn([], [{ op: 'put', key: `${p}d`, value: '1' }, { op: 'delete', key: `${p}d` }]), 'invalid');
    });

    it('watches from a past revision, then live, in order', async () => {
      const first = await store.put(`${p}w/a`, 'a1');
      await store.put(`${p}outside`, 'not watched');
      await store.put(`${p}w/b`, 'b1');
      await store.delete(`${p}w/a`);
      const events: WatchEvent[] = [];
      watchers.push(await store.watch(`${p}w/`, { fromRevision: first }, (e) => events.push(e)));
      await waitFor('past events', 5000, () => (events.length >= 3 ? true : undefined));
      const live = await store.put(`${p}w/c`, 'c1');
      await store.txn([], [{ op: 'put', key: `${p}w/b`, value: 'b2' }, { op: 'put', key: `${p}w/d`, value: 'd1' }]);
      await waitFor('live events', 5000, () => (events.length >= 6 ? true : undefined));
      await sleep(200);
      assert.deepEqual(
        events.map((e) => [e.type, eventKey(e), e.type === 'put' ? e.kv.value : null]),
        [
          ['put', `${p}w/a`, 'a1'],
          ['put', `${p}w/b`, 'b1'],
          ['delete', `${p}w/a`, null],
          ['put', `${p}w/c`, 'c1'],
          ['put', `${p}w/b`, 'b2'],
          ['put', `${p}w/d`, 'd1'],
        ],
      );
      const revs = events.map(eventRev);
      assert.equal(revs[0], first);
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! >= revs[i - 1]!, `revisions in order: ${revs.join(',')}`);
      assert.equal(revs[3], live);
      assert.equal(revs[4], revs[5], 'one transaction, one revision');
      const b2 = events[4]!;
      assert.ok(b2.type === 'put' && b2.kv.createRevision < b2.kv.modRevision);

      // A watch without fromRevision sees only what comes after it.
      const later: WatchEvent[] = [];
      const w2 = await store.watch(`${p}w/`, {}, (e) => later.push(e));
      watchers.push(w2);
      await sleep(300);
      assert.deepEqual(later, []);
      await store.put(`${p}w/e`, 'e1');
      await waitFor('new event', 5000, () => (later.length >= 1 ? true : undefined));
      assert.equal(eventKey(later[0]!), `${p}w/e`);
      // After cancel, nothing more arrives.
      await w2.cancel();
      await store.put(`${p}w/f`, 'f1');
      await sleep(400);
      assert.equal(later.length, 1);
    });

    it('watch sees writes made by another process', async function () {
      this.timeout(30000);
      const events: WatchEvent[] = [];
      watchers.push(await store.watch(`${p}proc/`, {}, (e) => events.push(e)));
      await runChild(['puts', backend.url, `${p}proc`, '20']);
      await waitFor('20 events from the child', 5000, () => (events.length >= 20 ? true : undefined));
      assert.deepEqual(events.map((e) => (e.type === 'put' ? e.kv.value : 'x')), Array.from({ length: 20 }, (_, i) => String(i)));
    });

    it('expires, renews and revokes leases', async function () {
      this.timeout(30000);
      const events: WatchEvent[] = [];
      watchers.push(await store.watch(`${p}l/`, {}, (e) => events.push(e)));

      const short = await store.grantLease(2);
      assert.equal(short.ttlSeconds, 2);
      await store.put(`${p}l/short`, 's', { lease: short.id });
      await store.put(`${p}l/plain`, 'p');
      assert.equal((await store.get(`${p}l/short`))!.lease, short.id);
      const t0 = Date.now();
      await waitFor('the unrenewed key to vanish', 10000, async () => ((await store.get(`${p}l/short`)) === undefined ? true : undefined));
      assert.ok(Date.now() - t0 >= 1000, 'not before its TTL');
      assert.deepEqual((await store.list(`${p}l/`)).map((k) => k.key), [`${p}l/plain`]);
      await waitFor('a delete event for the expired key', 10000, () =>
        events.some((e) => e.type === 'delete' && e.key === `${p}l/short`) ? true : undefined,
      );
      await rejectsWith(short.renew(), 'not-found');
      await rejectsWith(store.put(`${p}l/late`, 'x', { lease: short.id }), 'not-found');

      const kept = await store.grantLease(2);
      await store.put(`${p}l/kept`, 'k', { lease: kept.id });
      for (let i = 0; i < 6; i++) {
        await sleep(700);
        await kept.renew();
      }
      assert.equal((await store.get(`${p}l/kept`))!.value, 'k', 'renewed for 4.2 s, longer than its 2 s TTL');
      await kept.revoke();
      assert.equal(await store.get(`${p}l/kept`), undefined, 'revoke deletes at once');
      await waitFor('a delete event for the revoked key', 5000, () =>
        events.some((e) => e.type === 'delete' && e.key === `${p}l/kept`) ? true : undefined,
      );
      await rejectsWith(kept.renew(), 'not-found');
      assert.equal((await store.get(`${p}l/plain`))!.value, 'p', 'keys without a lease stay');
    });

    it('keeps concurrent CAS writers from several processes exact', async function () {
      this.timeout(120000);
      const key = `${p}counter`;
      await Promise.all([0, 1, 2, 3].map(() => runChild(['incr', backend.url, key, '200'])));
      assert.equal((await store.get(key))!.value, '800');
      // A fresh connection agrees.
      const other = await backend.open();
      extraStores.push(other);
      assert.equal((await other.get(key))!.value, '800');
    });

    if (options.server) it('reports a vanished server as unavailable and recovers when it returns', async function () {
      this.timeout(90000);
      assert.ok(backend.outage, 'a server backend provides outage()');
      const outage = backend.outage;
      const rev = await store.put(`${p}durable`, 'kept');
      await store.txn([], [{ op: 'put', key: `${p}t1`, value: '1' }, { op: 'put', key: `${p}t2`, value: '2' }]);
      const events: WatchEvent[] = [];
      watchers.push(await store.watch(`${p}w/`, {}, (e) => events.push(e)));
      await outage.stop();
      try {
        for (const op of [() => store.get(`${p}durable`), () => store.put(`${p}x`, 'x'), () => store.list(p), () => store.revision()]) {
          const t0 = Date.now();
          const err = await rejectsWith(op(), 'unavailable');
          assert.equal(err.retryable, true);
          assert.ok(Date.now() - t0 < 8000, `failed within bounded time (${Date.now() - t0} ms)`);
        }
        // A new client cannot connect either, and says so in bounded time.
        const t0 = Date.now();
        await rejectsWith((async () => {
          const s = await backend.open();
          extraStores.push(s);
          await s.get(`${p}durable`);
        })(), 'unavailable');
        assert.ok(Date.now() - t0 < 10000, `open failed within bounded time (${Date.now() - t0} ms)`);
      } finally {
        await outage.start();
      }
      const kv = await waitFor('the store to answer again', 30000, () => store.get(`${p}durable`));
      assert.equal(kv.value, 'kept');
      assert.equal(kv.modRevision, rev);
      assert.deepEqual((await store.list(`${p}t`)).map((k) => k.value), ['1', '2']);
      const r2 = await store.put(`${p}after`, 'yes');
      assert.ok(r2 > rev);
      // A watch made before the outage resumes by itself.
      await store.put(`${p}w/x`, 'after the outage');
      await waitFor('the old watcher to see a write made after the outage', 40000, () =>
        events.some((e) => e.type === 'put' && e.kv.value === 'after the outage') ? true : undefined,
      );
    });
  });
}
