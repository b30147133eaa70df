// The multi-process allocation checks, run against each store backend by
// concurrency.test.ts.
import assert from 'node:assert/strict';
import { Ipam } from '../../ipam/index.js';
import type { Store } from '../../store/types.js';
import { Workers, duplicates } from './procs.js';

/**
 * The checks for one backend: `setup` gives a store URL and a store opened on
 * it; `teardown` removes everything it made.
 */
export function concurrencySuite(name: string, setup: () => Promise<{ url: string; store: Store }>, teardown: () => Promise<void>): void {
  describe(`ipam concurrency: processes on one pool (${name})`, function () {
    this.timeout(120_000);
    let url: string;
    let store: Store;
    const workers = new Workers();

    beforeEach(async () => {
      ({ url, store } = await setup());
    });
    afterEach(async () => {
      await workers.stopAll();
      await teardown();
    });

    it('6 processes x 100 allocations: no address handed out twice, counts right', async () => {
      const ipam = new Ipam({ store, hostId: 'test' });
      const pool = await ipam.requestPool({ subnet: '10.20.0.0/22', space: 'global' });
      const results = await workers.run(url, pool.id, 6, 100);
      const all = results.flatMap((r) => r.allocated);
      assert.equal(all.length, 600);
      assert.deepEqual(duplicates(all), []);
      const listed = await ipam.listAllocations(pool.id);
      assert.deepEqual(new Set(listed.map((a) => a.address)), new Set(all));
      // Each address is recorded with the worker that received it.
      for (const [i, r] of results.entries()) {
        const mine = new Set(listed.filter((a) => a.host === `host-w${i}`).map((a) => a.address));
        assert.deepEqual(mine, new Set(r.allocated));
      }
      assert.deepEqual(await ipam.usage(pool.id), { allocated: 600, inRange: 600, capacity: 1022n });
    });

    it('6 processes allocating and releasing on a small pool that wraps: held addresses unique, counts right', async () => {
      const ipam = new Ipam({ store, hostId: 'test' });
      // 30 usable addresses, 6 x 40 allocations: the cursor wraps about eight times.
      const pool = await ipam.requestPool({ subnet: '10.21.0.0/27', gateway: '10.21.0.1', space: 'global' });
      const results = await workers.run(url, pool.id, 6, 40, true);
      const held = results.map((r) => r.allocated.at(-1)!);
      assert.deepEqual(duplicates(held), []);
      for (const r of results) assert.equal(r.released.length, 39);
      const listed = await ipam.listAllocations(pool.id);
      assert.deepEqual(listed.map((a) => a.address).sort(), [...held].sort());
      assert.deepEqual(await ipam.usage(pool.id), { allocated: 6, inRange: 6, capacity: 29n });
    });

    it('hosts requesting default pools at the same moment never get overlapping ones', async () => {
      // Default pools: each Ipam picks "the next free" one at the same moment.
      const hosts = Array.from({ length: 8 }, (_, i) => new Ipam({ store, hostId: `racer${i}` }));
      const pools = await Promise.all(hosts.map((h) => h.requestPool({ space: 'global' })));
      assert.equal(new Set(pools.map((p) => p.subnet)).size, 8);
      assert.equal((await hosts[0]!.listPools('global')).length, 8);
    });
  });
}
