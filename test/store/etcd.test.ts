// The etcd backend against a real etcd server on a loopback port, and against
// servers with small limits: requests over --max-request-bytes, lists whose
// answer is larger than the client receives in one message, a full database.
import assert from 'node:assert/strict';
import { isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';
import { startEtcd, type TestServer } from '../support/servers.js';
import { storeConformance } from './conformance.js';

describe('etcd backend', function () {
  let etcd: TestServer | undefined;
  before(async function () {
    this.timeout(60000);
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.stop();
  });

  storeConformance('etcd', {
    server: true,
    setup: async () => {
      const server = etcd!;
      return {
        url: server.url,
        open: () => openStore(server.url),
        outage: { stop: () => server.kill(), start: () => server.restart() },
      };
    },
  });

  describe('etcd store', () => {
    it('refuses to watch from a compacted revision', async function () {
      const server = etcd!;
      const store = await openStore(server.url);
      const { Etcd3 } = await import('etcd3');
      const raw = new Etcd3({ hosts: `http://127.0.0.1:${server.port}` });
      try {
        const first = await store.put('compact/a', '1');
        const last = await store.put('compact/a', '2');
        await raw.kv.compact({ revision: String(last), physical: true });
        await assert.rejects(store.watch('compact/', { fromRevision: first }, () => undefined), (err: unknown) => isStrandError(err, 'invalid'));
        // From the compaction point on, history is there.
        const seen: string[] = [];
        const w = await store.watch('compact/', { fromRevision: last }, (e) => seen.push(e.type === 'put' ? e.kv.value : 'deleted'));
        for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
        await w.cancel();
        assert.deepEqual(seen, ['2']);
      } finally {
        raw.close();
        await store.close();
      }
    });
  });

  describe('etcd limits', function () {
    this.timeout(60000);
    const LIMIT = 64 * 1024;
    let small: TestServer | undefined;
    let full: TestServer | undefined;
    const stores: Store[] = [];
    const open = async (url: string) => {
      const s = await openStore(url);
      stores.push(s);
      return s;
    };
    before(async function () {
      this.timeout(60000);
      [small, full] = await Promise.all([
        startEtcd({ maxRequestBytes: LIMIT }),
        startEtcd({ maxRequestBytes: LIMIT, quotaBackendBytes: 2 * 1024 * 1024 }),
      ]);
    });
    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    });
    after(async function () {
      this.timeout(60000);
      await small?.stop();
      await full?.stop();
    });

    it('a put over the server\'s --max-request-bytes is invalid (not retryable), naming the key', async () => {
      const store = await open(small!.url);
      // Just over the limit, etcd answers "request is too large"; 512 KiB
      // beyond it, its grpc server answers RESOURCE_EXHAUSTED.
      for (const size of [LIMIT + 1024, LIMIT + 600 * 1024]) {
        await assert.rejects(store.put('limits/big', 'x'.repeat(size)), (err: unknown) => {
          assert.ok(isStrandError(err, 'invalid'), String(err));
          assert.equal(err.retryable, false);
          assert.match(err.message, /put "limits\/big": the request is larger than the server accepts \(.*(request is too large|larger than max).*\); etcd limits a request to --max-request-bytes/);
          assert.doesNotMatch(err.message, /cannot reach|retry/);
          return true;
        }, `${size} bytes`);
      }
      await assert.rejects(store.txn([], [{ op: 'put', key: 'limits/t1', value: 'x'.repeat(LIMIT / 2) }, { op: 'put', key: 'limits/t2', value: 'x'.repeat(LIMIT / 2) }]),
        (err: unknown) => isStrandError(err, 'invalid') && /larger than the server accepts/.test(err.message));
      assert.equal(await store.get('limits/big'), undefined);
    });

    it('refuses a value over 1.5 MiB before sending it, naming the key', async () => {
      const store = await open(etcd!.url);
      await assert.rejects(store.put('limits/huge', 'x'.repeat(1.5 * 1024 * 1024)), (err: unknown) =>
        isStrandError(err, 'invalid') && /put "limits\/huge": key "limits\/huge" and its value take 1\.50 MiB; etcd refuses requests over 1\.5 MiB/.test(err.message));
      await assert.rejects(store.txn([], [{ op: 'put', key: 'limits/a', value: 'x'.repeat(800 * 1024) }, { op: 'put', key: 'limits/b', value: 'x'.repeat(800 * 1024) }]),
        (err: unknown) => isStrandError(err, 'invalid') && /keys "limits\/a", "limits\/b" and their values take 1\.56 MiB/.test(err.message));
      // Just under is fine on a server with etcd's default limit.
      await store.put('limits/huge', 'x'.repeat(1400 * 1024));
      assert.equal((await store.get('limits/huge'))?.value.length, 1400 * 1024);
    });

    it('lists a prefix whose answer is larger than one grpc message (4 MiB) in pages, in order', async () => {
      const store = await open(small!.url);
      const value = 'v'.repeat(60 * 1024);
      const n = 100; // 6 MiB in all
      for (let i = 0; i < n; i += 10) {
        await Promise.all(Array.from({ length: 10 }, (_, j) => store.put(`big/${String(i + j).padStart(3, '0')}`, `${i + j}:${value}`)));
      }
      await store.put('big0', 'outside the prefix');
      // One unpaged range, as the store used to send, cannot be received.
      const { Etcd3 } = await import('etcd3');
      const raw = new Etcd3({ hosts: `http://127.0.0.1:${small!.port}` });
      try {
        await assert.rejects(raw.getAll().prefix('big/').exec(), /RESOURCE_EXHAUSTED|larger than max/);
      } finally {
        raw.close();
      }
      const t0 = Date.now();
      const kvs = await store.list('big/');
      const ms = Date.now() - t0;
      assert.equal(kvs.length, n);
      kvs.forEach((kv, i) => {
        assert.equal(kv.key, `big/${String(i).padStart(3, '0')}`);
        assert.ok(kv.value.startsWith(`${i}:`));
      });
      console.log(`      listed ${n} keys of 60 KiB (6 MiB) in ${ms} ms`);
    });

    it('lists thousands of small keys across pages as one snapshot', async () => {
      const store = await open(etcd!.url);
      const n = 2500;
      const ops = Array.from({ length: n }, (_, i) => ({ op: 'put' as const, key: `many/${String(i).padStart(5, '0')}`, value: String(i) }));
      for (let i = 0; i < n; i += 100) await store.txn([], ops.slice(i, i + 100));
      const kvs = await store.list('many/');
      assert.deepEqual(kvs.map((kv) => kv.value), ops.map((o) => o.value));
      assert.equal((await store.list('')).filter((kv) => kv.key.startsWith('many/')).length, n);
    });

    it('a full database (NOSPACE) is reported as such, not as "retry"', async () => {
      const store = await open(full!.url);
      const value = 'n'.repeat(60 * 1024);
      let err: unknown;
      for (let i = 0; i < 200 && err === undefined; i++) {
        await store.put(`fill/${i}`, value).catch((e: unknown) => (err = e));
      }
      assert.ok(isStrandError(err, 'unavailable'), String(err));
      assert.equal(err.retryable, false);
      assert.match(err.message, /the etcd database is full \(.*database space exceeded.*\); an operator must compact and defragment it/);
    });
  });
});
