// The etcd backend against a real etcd server on a loopback port.
import assert from 'node:assert/strict';
import { isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
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
});
