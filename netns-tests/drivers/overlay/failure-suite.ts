// The overlay when things break: a host killed with kill -9 leaves every
// other host's tables within its lease TTL and comes back when restarted;
// the store going away leaves the data plane alone, the agents say so, and
// they converge once it is back; an agent killed in the middle of changes
// (and an entry removed behind its back) converges on restart and resync.
// One suite, run against each store backend by failures.test.ts and redis.test.ts.
import assert from 'node:assert/strict';
import { useTestBed, ipJson, run } from '../../../test/support/harness.js';
import { ask, answer } from '../../../test/support/traffic.js';
import { Cluster, waitFor, type Host } from '../../../test/support/cluster.js';

function vxlanOf(host: Host, network: string): string {
  const id = JSON.parse(host.strand(['network', 'inspect', network]).stdout)[0].Id as string;
  return `vx-${id.slice(0, 12)}`;
}

const macOf = (h: Host, sb: string): string => ipJson<{ address: string }>(['link', 'show', 'eth0'], h.netnsOf(sb))[0]!.address;

export function storeSuite(store: 'etcd' | 'redis'): void {
  describe(`overlay failures (${store})`, function () {
    this.timeout(180000);
    const bed = useTestBed();

    it('drops a host killed with kill -9 from the others\' FDB within the lease TTL, and takes it back when it returns', async () => {
      const c = await Cluster.start(bed(), { store, leaseTtl: 3, resync: 1 });
      const [a, b, h2] = c.hosts as [Host, Host, Host];
      a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.211.0.0/24', 'ovl']);
      a.serve('sa', 'ovl', [5000]);
      b.serve('sb', 'ovl', [5000]);
      h2.serve('sc', 'ovl', [5000]);
      const dev = vxlanOf(a, 'ovl');
      const hasC = (h: Host) => [...h.fdb(dev).values()].includes(h2.ip);
      await waitFor('A and B to know C', () => hasC(a) && hasC(b));

      const t0 = Date.now();
      await h2.killDaemon();
      await waitFor('C to leave A and B', () => !hasC(a) && !hasC(b), 10000, 50);
      const took = Date.now() - t0;
      assert.ok(took <= c.leaseTtl * 1000 + 1500, `took ${took} ms for a ${c.leaseTtl} s lease`);
      // The survivors still talk.
      assert.ok(await answer(() => ask(a.netnsOf('sa'), 'tcp', b.ipOf('sb'), 5000)));

      await h2.startDaemon();
      await waitFor('C to be back on A', () => hasC(a) && hasC(b));
      assert.equal(a.fdb(dev).get(macOf(h2, 'sc')), h2.ip);
      assert.ok(await answer(() => ask(a.netnsOf('sa'), 'tcp', h2.ipOf('sc'), 5000)));
    });

    it('keeps the data plane while the store is down, reports it unreachable, and converges when it is back', async () => {
      const c = await Cluster.start(bed(), { store, leaseTtl: 3, resync: 1 });
      const [a, b, h2] = c.hosts as [Host, Host, Host];
      a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.212.0.0/24', 'ovl']);
      a.serve('sa', 'ovl', [5000]);
      b.serve('sb', 'ovl', [5000]);
      const ipB = b.ipOf('sb');
      const nsA = a.netnsOf('sa');
      assert.ok(await answer(() => ask(nsA, 'tcp', ipB, 5000)));
      const dev = vxlanOf(a, 'ovl');
      const before = a.fdb(dev);

      await c.store.kill();
      await waitFor('the agents to report the store unreachable', () => c.hosts.every((h) => h.dump().agent?.storeReachable === false), 20000, 500);
      const d = a.dump();
      assert.equal(d.store.reachable, false);
      // Longer than the lease TTL: nothing may be flushed meanwhile.
      await new Promise((r) => setTimeout(r, (c.leaseTtl + 1) * 1000));
      assert.deepEqual(a.fdb(dev), before);
      assert.ok(await answer(() => ask(nsA, 'tcp', ipB, 5000)), 'the data plane keeps working without the store');

      await c.store.start();
      await waitFor('the agents to report the store reachable', () => c.hosts.every((h) => h.dump().agent?.storeReachable === true), 30000, 500);
      // New work after the outage reaches every host.
      h2.serve('sc', 'ovl', [5000]);
      const ipC = h2.ipOf('sc');
      assert.ok(await answer(() => ask(nsA, 'tcp', ipC, 5000)));
      assert.ok(await answer(() => ask(b.netnsOf('sb'), 'tcp', ipC, 5000)));
      for (const h of c.hosts) await waitFor(`${h.id} in sync`, () => h.dump().inSync);
    });

    it('converges after an agent is killed in the middle of changes, and restores an entry removed behind its back', async () => {
      const c = await Cluster.start(bed(), { store, hosts: 2, leaseTtl: 3, resync: 1 });
      const [a, b] = c.hosts as [Host, Host];
      a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.213.0.0/24', 'ovl']);
      b.serve('sb', 'ovl', [5000]);
      a.serve('s0', 'ovl', [5000]);
      const dev = vxlanOf(a, 'ovl');
      await waitFor('B to know s0', () => b.fdb(dev).has(macOf(a, 's0')));
      // Changes on A while B's agent dies halfway through them.
      for (let i = 1; i <= 4; i++) {
        a.serve(`s${i}`, 'ovl', [5000]);
        if (i === 2) await b.killDaemon();
      }
      a.strand(['rm', '-f', 's0']);
      const wanted = [1, 2, 3, 4].map((i) => macOf(a, `s${i}`));
      await b.startDaemon();
      await waitFor('B to hold exactly A\'s live endpoints', () => {
        const f = b.fdb(dev);
        return f.size === 4 && wanted.every((m) => f.get(m) === a.ip);
      });
      for (const i of [1, 4]) assert.ok(await answer(() => ask(b.netnsOf('sb'), 'tcp', a.ipOf(`s${i}`), 5000)), `s${i}`);
      assert.equal(b.dump().inSync, true);

      // A missed change (here: an entry deleted by hand) is repaired by the periodic resync.
      run('bridge', ['-n', b.netns, 'fdb', 'del', wanted[0]!, 'dev', dev, 'dst', a.ip, 'self']);
      assert.ok(!b.fdb(dev).has(wanted[0]!));
      await waitFor('the resync to restore it', () => b.fdb(dev).get(wanted[0]!) === a.ip, (c.resync + 2) * 1000, 100);
    });
  });
}

