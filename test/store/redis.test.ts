// The Redis backend against a real redis-server (append-only file on, fsynced
// on every write, so its data survives the outage test's restart), and the
// persistence check: what a crash keeps under each setting, and which
// settings the store refuses.
import assert from 'node:assert/strict';
import { isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
import { startRedis, type RedisOptions, type TestServer } from '../support/servers.js';
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

  describe('persistence check', function () {
    this.timeout(60000);
    const servers: TestServer[] = [];
    const stores: Store[] = [];
    const start = async (options: RedisOptions) => {
      const s = await startRedis(options);
      servers.push(s);
      return s;
    };
    const open = async (url: string) => {
      const s = await openStore(url);
      stores.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    });
    after(async function () {
      this.timeout(60000);
      await Promise.all(servers.splice(0).map((s) => s.stop()));
    });

    it('under appendfsync always, an acknowledged write survives kill -9 and a restart', async () => {
      const server = await start({ persistence: 'always' });
      const store = await open(server.url);
      const rev = await store.put('crash/always', 'kept');
      await server.crash();
      await server.restart();
      for (let i = 0; ; i++) {
        try {
          assert.deepEqual(await store.get('crash/always'), { key: 'crash/always', value: 'kept', createRevision: rev, modRevision: rev });
          break;
        } catch (err) {
          if (!isStrandError(err, 'unavailable') || i > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      // The store still writes after the reconnect (its persistence checked again).
      assert.equal(await store.put('crash/always', 'again'), rev + 1);
    });

    it("refuses Debian's default persistence (RDB snapshots only), naming appendonly and durability=none", async () => {
      const server = await start({ persistence: 'default' });
      await assert.rejects(openStore(server.url), (err: unknown) => {
        assert.ok(isStrandError(err, 'invalid'), String(err));
        assert.equal(err.retryable, false);
        assert.match(err.message, /can lose writes it has acknowledged: appendonly is no .*"appendonly yes" and "appendfsync always".*durability=none/);
        return true;
      });
    });

    it('with durability=none on the default persistence, kill -9 loses an acknowledged write (why the check exists)', async () => {
      const server = await start({ persistence: 'default' });
      const store = await open(`${server.url}?durability=none`);
      await store.put('crash/rdb', 'lost');
      assert.equal((await store.get('crash/rdb'))?.value, 'lost');
      await server.crash();
      await server.restart();
      const reopened = await open(`${server.url}?durability=none`);
      assert.equal(await reopened.get('crash/rdb'), undefined);
    });

    it('refuses appendfsync everysec', async () => {
      const server = await start({ persistence: 'everysec' });
      await assert.rejects(openStore(server.url), (err: unknown) =>
        isStrandError(err, 'invalid') && /appendfsync is everysec, so a crash loses up to a second or two of acknowledged writes; set "appendfsync always".*durability=none/.test(err.message));
    });

    it('says so when CONFIG is disabled, and durability=none opens the store anyway', async () => {
      const server = await start({ persistence: 'always', noConfig: true });
      await assert.rejects(openStore(server.url), (err: unknown) =>
        isStrandError(err, 'invalid') && /refuses CONFIG GET \(.*unknown command.*\), as managed Redis services .* durability=none/.test(err.message));
      const store = await open(`${server.url}?durability=none`);
      await store.put('k', 'v');
      assert.equal((await store.get('k'))?.value, 'v');
    });

    it('checks again after a reconnect, and refuses writes once the server has stopped fsyncing', async () => {
      const server = await start({ persistence: 'always' });
      const store = await open(server.url);
      await store.put('k', '1');
      const { Redis } = await import('ioredis');
      const raw = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
      try {
        await raw.connect();
        await raw.config('SET', 'appendfsync', 'everysec');
        await raw.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      } finally {
        raw.disconnect();
      }
      let err: unknown;
      for (let i = 0; i < 50; i++) {
        try {
          await store.put('k', '2');
        } catch (e) {
          err = e;
          if (isStrandError(e, 'invalid')) break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(isStrandError(err, 'invalid') && /appendfsync is everysec/.test(err.message), String(err));
      assert.equal((await store.get('k'))?.value, '1', 'reads still work');
    });

    it('costs one round trip at open (median of 15 opens, printed)', async () => {
      const server = await start({ persistence: 'always' });
      const median = async (url: string) => {
        const times: number[] = [];
        for (let i = 0; i < 15; i++) {
          const t0 = process.hrtime.bigint();
          const s = await openStore(url);
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
          await s.close();
        }
        return times.sort((a, b) => a - b)[7]!;
      };
      await median(server.url); // warm up
      const checked = await median(server.url);
      const unchecked = await median(`${server.url}?durability=none`);
      console.log(`      open with the persistence check: median ${checked.toFixed(2)} ms; with durability=none: ${unchecked.toFixed(2)} ms`);
    });
  });

  describe('redis with a password', () => {
    let secured: TestServer | undefined;
    const stores: Store[] = [];
    before(async function () {
      this.timeout(60000);
      secured = await startRedis({ password: 's3cret/pw' });
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
      assert.equal(good.url, `redis://***@127.0.0.1:${server.port}`, 'no password in store.url');
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
