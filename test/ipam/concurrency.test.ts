import { openStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';
import { type TestServer, startEtcd, startRedis } from '../support/servers.js';
import { concurrencySuite } from './concurrency-suite.js';
import { type TempStore, tempLocalStore } from './helpers.js';

let local: TempStore | undefined;
concurrencySuite(
  'local store',
  async () => {
    local = await tempLocalStore();
    return { url: local.url, store: local.store };
  },
  async () => {
    await local?.cleanup();
    local = undefined;
  },
);

// A fresh server per test, so each starts from an empty store.
for (const [name, start] of [
  ['etcd', startEtcd],
  ['redis', startRedis],
] as const) {
  let server: TestServer | undefined;
  let store: Store | undefined;
  concurrencySuite(
    name,
    async () => {
      server = await start();
      store = await openStore(server.url);
      return { url: server.url, store };
    },
    async () => {
      try {
        await store?.close();
      } finally {
        await server?.stop();
        store = undefined;
        server = undefined;
      }
    },
  );
}
