// The Redis backend against a real redis-server (append-only file on, so
// its data survives the outage test's restart).
import assert from 'node:assert/strict';
import { isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
import { startRedis, type TestServer } from '../support/servers.js';
import type { Store } from '../../store/types.js';
import { storeConformance } from './conformance.js';

describe('redis backend', function () {
  let redis: TestServer | undefined;
  before(async function () {
    this.timeout(60000);
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  storeConformance('redis', {
    server: true,
    setup: async () => {
      const server = redis!;
      return {
        url: server.url,
        open: () => openStore(server.url),
        outage: { stop: () => server.kill(), start: () => server.restart() },
      };
    },
  });

  describe('redis store', () => {
    it('ends expired leases for every client, with no watcher or sweeper running', async function () {
      this.timeout(20000);
      const server = redis!;
      const a = await openStore(server.url);
      const b = await openStore(server.url);
      try {
        const lease = await a.grantLease(1);
        const rev = await a.put('hosts/h1', 'alive', { lease: lease.id });
        await a.close(); // host A dies: nobody renews, nobody sweeps
        assert.equal((await b.get('hosts/h1'))?.value, 'alive');
        await new Promise((r) => setTimeout(r, 1600));
        // B's first read ends the lease, on the server's clock, and logs the delete.
        assert.equal(await b.get('hosts/h1'), undefined);
        const events: string[] = [];
        const w = await b.watch('hosts/', { fromRevision: rev }, (e) => events.push(`${e.type} ${e.type === 'put' ? e.kv.key : e.key}`));
        for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
        await w.cancel();
        assert.deepEqual(events, ['put hosts/h1', 'delete hosts/h1']);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('refuses to watch from a revision trimmed from the event log', async function () {
      const server = redis!;
      const store = await openStore(`${server.url}?prefix=trim:`);
      const { Redis } = await import('ioredis');
      const raw = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
      try {
        await raw.connect();
        const first = await store.put('x', '1');
        const last = await store.put('x', '2');
        await raw.xtrim('trim:log', 'MAXLEN', 1);
        await assert.rejects(store.watch('', { fromRevision: first }, () => undefined), (err: unknown) => isStrandError(err, 'invalid'));
        const seen: string[] = [];
        const w = await store.watch('', { fromRevision: last }, (e) => seen.push(e.type === 'put' ? e.kv.value : 'deleted'));
        for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
        await w.cancel();
        assert.deepEqual(seen, ['2']);
        // Nothing outside the prefix was touched.
        assert.deepEqual(await raw.keys('strand:*trim*'), []);
      } finally {
        raw.disconnect();
        await store.close();
      }
    });
  });

  describe('redis with a password', () => {
    let secured: TestServer | undefined;
    const stores: Store[] = [];
    before(async function () {
      this.timeout(60000);
      secured = await startRedis({ persist: false, password: 's3cret/pw' });
    });
    after(async () => {
      for (const s of stores) await s.close();
      await secured?.stop();
    });

    it('connects with the password from the URL and refuses a wrong or missing one', async () => {
      const server = secured!;
      assert.match(server.url, /^redis:\/\/:s3cret%2Fpw@/);
      const good = await openStore(server.url);
      stores.push(good);
      assert.equal(good.url, `redis://:***@127.0.0.1:${server.port}`, 'no password in store.url');
      await good.put('k', 'v');
      assert.equal((await good.get('k'))!.value, 'v');
      for (const url of [`redis://:wrong@127.0.0.1:${server.port}`, `redis://127.0.0.1:${server.port}`]) {
        await assert.rejects(
          (async () => {
            const s = await openStore(url);
            stores.push(s);
            await s.get('k');
          })(),
          (err: unknown) => isStrandError(err, 'invalid') && !String((err as Error).message).includes('s3cret'),
          url,
        );
      }
    });
  });
});
