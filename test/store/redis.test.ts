// The Redis backend against a real redis-server (append-only file on, so
// its data survives the outage test's restart).
import { openStore } from '../../store/index.js';
import { startRedis, type TestServer } from '../support/servers.js';
import { storeConformance } from './conformance.js';

let redis: TestServer | undefined;
after(async () => {
  await redis?.stop();
});

storeConformance('redis', {
  setup: async () => {
    redis = await startRedis();
    const server = redis;
    return {
      url: server.url,
      open: () => openStore(server.url),
      outage: { stop: () => server.kill(), start: () => server.restart() },
    };
  },
});
