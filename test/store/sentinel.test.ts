// The Redis backend through redis-sentinel (redis+sentinel://): a master, one
// replica and three sentinels (quorum 2), all on loopback. The conformance
// suite runs over it (its outage takes both data servers away), then a
// failover: the master is killed with SIGKILL, the sentinels promote the
// replica, the store follows. Replication is asynchronous: what the master
// acknowledged in the instant before it died may never have reached the
// replica; the test prints how many of those survived and asserts only on
// writes the replica had confirmed.
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';
import { startRedis, startSentinel, type TestServer } from '../support/servers.js';
import { storeConformance } from './conformance.js';

const MASTER = 'strandmaster';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withRaw<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function fields(flat: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!);
  return m;
}

/** Until every sentinel knows the replica and the other two sentinels (needed for a failover vote). */
async function sentinelsSettled(sentinels: TestServer[], timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = true;
    for (const s of sentinels) {
      const m = fields((await withRaw(s.port, (r) => r.call('SENTINEL', 'MASTER', MASTER)).catch(() => [])) as string[]);
      if (m.get('num-slaves') !== '1' || m.get('num-other-sentinels') !== String(sentinels.length - 1) || /down/.test(m.get('flags') ?? '')) ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error('sentinels did not learn the replica and each other in time');
    await sleep(200);
  }
}

/** The port the sentinels name as master now. */
async function masterPort(sentinel: TestServer): Promise<number> {
  const addr = (await withRaw(sentinel.port, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER))) as string[];
  return Number(addr[1]);
}

/**
 * Until the replica has everything the master has: its link is up (the first
 * full sync is over) and its replication offset is the master's.
 */
async function replicaCaughtUp(master: TestServer, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await withRaw(master.port, (r) => r.info('replication')).catch(() => '');
    const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
    const replica = /slave0:.*state=online,offset=(\d+)/.exec(info)?.[1];
    if (offset !== undefined && offset === replica) return;
    if (Date.now() > deadline) throw new Error(`replica did not catch up: ${info}`);
    await sleep(20);
  }
}

describe('redis through sentinel', function () {
  this.timeout(120000);
  let master: TestServer;
  let replica: TestServer;
  const sentinels: TestServer[] = [];
  const all: TestServer[] = [];
  let url = '';

  before(async function () {
    this.timeout(90000);
    master = await startRedis({ persistence: 'always' });
    all.push(master);
    replica = await startRedis({ persistence: 'always', replicaOf: master.port });
    all.push(replica);
    for (let i = 0; i < 3; i++) {
      const s = await startSentinel({ masterName: MASTER, masterPort: master.port, quorum: 2, downAfterMs: 1000 });
      sentinels.push(s);
      all.push(s);
    }
    await sentinelsSettled(sentinels);
    url = `redis+sentinel://${sentinels.map((s) => s.url).join(',')}/${MASTER}`;
  });
  after(async function () {
    this.timeout(60000);
    await Promise.all(all.map((s) => s.stop()));
  });

  storeConformance('redis+sentinel', {
    server: true,
    setup: async () => ({
      url,
      open: () => openStore(url),
      // Both data servers away (the sentinels have nobody to promote), then back.
      outage: {
        stop: async () => {
          await Promise.all([master.kill(), replica.kill()]);
        },
        start: async () => {
          await master.restart();
          await replica.restart();
          await sentinelsSettled(sentinels, 60000);
          await replicaCaughtUp(master);
        },
      },
    }),
  });

  describe('failover', () => {
    const stores: Store[] = [];
    after(async () => {
      for (const s of stores) await s.close().catch(() => undefined);
    });

    it('follows the promoted replica after the master is killed; writes the replica had confirmed survive', async () => {
      await sentinelsSettled(sentinels, 60000);
      const oldPort = await masterPort(sentinels[0]!);
      const oldMaster = oldPort === master.port ? master : replica;
      const store = await openStore(url);
      stores.push(store);
      const confirmed: number[] = [];
      for (let i = 0; i < 50; i++) confirmed.push(await store.put(`fo/confirmed/${i}`, String(i)));
      await replicaCaughtUp(oldMaster);

      // Writes in flight while the master dies: each acknowledged one is noted.
      const acked: string[] = [];
      let failures = 0;
      let writing = true;
      let firstAfter = 0;
      let killedAt = 0;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          try {
            await store.put(`fo/racing/${i}`, String(i));
            acked.push(`fo/racing/${i}`);
            if (killedAt && !firstAfter) firstAfter = Date.now();
          } catch (err) {
            if (!isStrandError(err, 'unavailable')) throw err;
            failures++;
            await sleep(50);
          }
        }
      })();
      while (acked.length < 20) await sleep(5);
      await oldMaster.crash();
      killedAt = Date.now();
      const ackedBeforeKill = acked.length;
      const deadline = Date.now() + 60000;
      while (!firstAfter && Date.now() < deadline) await sleep(50);
      const extra = acked.length + 20;
      while (acked.length < extra && Date.now() < deadline) await sleep(20);
      writing = false;
      await writer;
      assert.ok(firstAfter, 'the store wrote again within 60 s of the kill');
      const newPort = await masterPort(sentinels[0]!);
      assert.notEqual(newPort, oldPort, 'the sentinels promoted the replica');

      for (let i = 0; i < 50; i++) assert.equal((await store.get(`fo/confirmed/${i}`))?.value, String(i), `fo/confirmed/${i}`);
      const survivedBeforeKill = (await Promise.all(acked.slice(0, ackedBeforeKill).map((k) => store.get(k)))).filter(Boolean).length;
      const afterKill = acked.slice(ackedBeforeKill);
      for (const k of afterKill) assert.ok(await store.get(k), `${k}, acknowledged by the new master`);
      console.log(`      failover: first write on the new master ${firstAfter - killedAt} ms after kill -9 (${failures} calls failed as unavailable meanwhile); `
        + `${survivedBeforeKill} of the ${ackedBeforeKill} writes acknowledged by the old master in the racing loop survived (replication is asynchronous), `
        + `all 50 confirmed on the replica survived, all ${afterKill.length} written after the failover are there`);

      // The old master comes back as a replica of the new one; the store stays on the new master.
      await oldMaster.restart();
      await store.put('fo/after-return', 'yes');
      assert.equal((await store.get('fo/after-return'))?.value, 'yes');
    });
  });
});
