// The etcd backend against a real etcd server on a loopback port.
import { openStore } from '../../store/index.js';
import { startEtcd, type TestServer } from '../support/servers.js';
import { storeConformance } from './conformance.js';

let etcd: TestServer | undefined;
after(async () => {
  await etcd?.stop();
});

storeConformance('etcd', {
  setup: async () => {
    etcd = await startEtcd();
    const server = etcd;
    return {
      url: server.url,
      open: () => openStore(server.url),
      outage: { stop: () => server.kill(), start: () => server.restart() },
    };
  },
});
