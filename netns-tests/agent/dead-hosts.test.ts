// Hosts that never come back: a host killed with kill -9 keeps its overlay
// endpoints in the store for the grace period, then one surviving agent
// removes them and frees their addresses, and the others' FDB holds nothing
// of it. When the host does come back, an endpoint whose address is still
// free is published again (its container keeps working); one whose address
// another endpoint took meanwhile, or whose network was removed meanwhile, is
// removed from its container.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestBed, ipJson } from '../../test/support/harness.js';
import { ask, answer } from '../../test/support/traffic.js';
import { Cluster, waitFor, type Host } from '../../test/support/cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const STORE_READ = join(here, 'store-read.js');
const GRACE = 4;

interface GlobalEndpoint {
  id: string;
  hostId: string;
  addresses: string[];
}

/** Keys under a prefix, read from the store itself from inside a host (not through strand's agent). */
function storeRead<T>(h: Host, prefix: string): { key: string; value: T }[] {
  const r = spawnSync('nsenter', [`--net=/run/netns/${h.netns}`, process.execPath, STORE_READ, prefix], { env: h.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`store read failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const endpointsOf = (h: Host, hostId: string): GlobalEndpoint[] => storeRead<GlobalEndpoint>(h, 'core/global/endpoints/').map((kv) => kv.value).filter((e) => e.hostId === hostId);
const addressesOf = (eps: GlobalEndpoint[]): string[] => eps.flatMap((e) => e.addresses.map((a) => a.split('/')[0]!)).sort();
/** `strand daemon dump`'s departed hosts, as another host reports them. */
const departedOn = (h: Host): { hostId: string; endpoints: number }[] => (h.dump() as unknown as { departed: { hostId: string; endpoints: number }[] }).departed;
const macOf = (h: Host, sb: string): string => ipJson<{ address: string }>(['link', 'show', 'eth0'], h.netnsOf(sb))[0]!.address;

describe('overlay: hosts that never come back', function () {
  this.timeout(180000);
  const bed = useTestBed();

  for (const store of ['etcd', 'redis'] as const) {
    it(`removes a dead host's endpoints after the grace period, frees their addresses, and sorts its endpoints out when it returns (${store})`, async () => {
      const c = await Cluster.start(bed(), { hosts: 3, leaseTtl: 2, resync: 1, store });
      const [a, b, h2] = c.hosts as [Host, Host, Host];
      // The agents under test, with a grace period of seconds.
      for (const h of c.hosts) {
        await h.killDaemon();
        await h.startDaemon(['--dead-host-grace', String(GRACE)]);
      }
      a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.224.0.0/24', 'ovl']);
      const vx = `vx-${(JSON.parse(a.strand(['network', 'inspect', 'ovl']).stdout)[0].Id as string).slice(0, 12)}`;
      a.serve('sa', 'ovl', [5000]);
      b.serve('sb', 'ovl', [5000]);
      h2.serve('keep', 'ovl', [5000], ['--ip', '10.224.0.40']);
      h2.serve('lose', 'ovl', [5000], ['--ip', '10.224.0.50']);
      // A network only C uses: once C's endpoints are gone it can be removed, and C must drop its leftover on return.
      a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.228.0.0/24', 'solo']);
      h2.serve('alone', 'solo', [5000]);
      const aloneIp = h2.ipOf('alone');
      const deadMacs = [macOf(h2, 'keep'), macOf(h2, 'lose')];
      await waitFor('A and B to know C\'s endpoints', () => [a, b].every((h) => deadMacs.every((m) => h.fdb(vx).get(m) === h2.ip)));
      assert.deepEqual(addressesOf(endpointsOf(a, 'host2')), [aloneIp, '10.224.0.40', '10.224.0.50'].sort());

      await h2.killDaemon();
      // Within the lease TTL the peers drop C from their tables, but its records wait out the grace period.
      await waitFor('C to leave A\'s and B\'s FDB', () => [a, b].every((h) => deadMacs.every((m) => !h.fdb(vx).has(m))), 10000, 100);
      const noted = await waitFor('a departure record for C', () => departedOn(a).find((d) => d.hostId === 'host2'), 10000, 100);
      assert.equal(noted.endpoints, 3, 'its endpoints stand during the grace period');

      await waitFor('C\'s endpoints to be removed from the store', () => endpointsOf(a, 'host2').length === 0, (GRACE + 10) * 1000, 200);
      assert.deepEqual(storeRead(a, 'overlay/departed/'), [], 'the departure record goes once the work is done');
      // Exactly one agent did it: the live host with the smallest id. (Logs arrive through pipes this process reads when idle.)
      const released = await waitFor('A to log the cleanup', () => /host host2 did not come back .* removed its 3 endpoint\(s\) and released (.*)/.exec(a.daemonLog)?.[1]);
      assert.deepEqual(released.split(', ').sort(), [aloneIp, '10.224.0.40', '10.224.0.50'].sort());
      assert.doesNotMatch(b.daemonLog, /did not come back/);
      for (const h of [a, b]) assert.ok(deadMacs.every((m) => !h.fdb(vx).has(m)), `${h.id} holds none of C's FDB entries`);
      // Its addresses are allocatable again: a container on A takes one of them.
      a.serve('taker', 'ovl', [5000], ['--ip', '10.224.0.50']);
      assert.equal(a.ipOf('taker'), '10.224.0.50');
      // Nothing of C's holds "solo" any more: it can go.
      a.strand(['network', 'rm', 'solo']);

      // C comes back. "keep"'s address is still free: it is published again and reachable.
      // "lose"'s address is the taker's now: it is removed from its container, not duplicated.
      await h2.startDaemon(['--dead-host-grace', String(GRACE)]);
      await waitFor('C to publish "keep" again', () => addressesOf(endpointsOf(a, 'host2')).join() === '10.224.0.40');
      assert.equal(await answer(() => ask(b.netnsOf('sb'), 'tcp', '10.224.0.40', 5000)), `keep ${b.ipOf('sb')}`);
      assert.equal(await answer(() => ask(b.netnsOf('sb'), 'tcp', '10.224.0.50', 5000)), `taker ${b.ipOf('sb')}`);
      assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], h2.netnsOf('lose')).map((l) => l.ifname), ['lo'], '"lose" has no overlay interface left');
      const holders = storeRead<GlobalEndpoint>(a, 'core/global/endpoints/').map((kv) => kv.value).filter((e) => e.addresses.some((x) => x.startsWith('10.224.0.50/')));
      assert.equal(holders.length, 1);
      assert.equal(holders[0]!.hostId, 'host0');
      await waitFor('C to log what it did', () => /published again/.test(h2.daemonLog) && /10\.224\.0\.50\/24 is another endpoint's now: removed it here/.test(h2.daemonLog));
      // "alone"'s network is gone: its interface and its record go, nothing of "solo" is left on C.
      await waitFor('C to drop "alone"\'s endpoint', () => /which was removed while this host was away: removed it here/.test(h2.daemonLog));
      assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], h2.netnsOf('alone')).map((l) => l.ifname), ['lo']);
      assert.deepEqual(h2.ps().find((x) => x.name === 'alone')!.addresses, []);
      assert.equal(storeRead(a, 'core/global/networks/').filter((kv) => (kv.value as { name: string }).name === 'solo').length, 0);
      await waitFor('B to know "keep" again', () => b.fdb(vx).get(deadMacs[0]!) === h2.ip);
    });
  }

  it('keeps a host that comes back within the grace period exactly as it was', async () => {
    const c = await Cluster.start(bed(), { hosts: 2, leaseTtl: 2, resync: 1 });
    const [a, b] = c.hosts as [Host, Host];
    for (const h of c.hosts) {
      await h.killDaemon();
      await h.startDaemon(['--dead-host-grace', '30']);
    }
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.225.0.0/24', 'ovl']);
    a.serve('sa', 'ovl', [5000]);
    b.serve('sb', 'ovl', [5000]);
    const before = endpointsOf(a, 'host1');
    await b.killDaemon();
    await waitFor('a departure record for B', () => departedOn(a).some((d) => d.hostId === 'host1'), 10000, 100);
    await b.startDaemon(['--dead-host-grace', '30']);
    await waitFor('the departure record to go', () => storeRead(a, 'overlay/departed/').length === 0);
    assert.deepEqual(endpointsOf(a, 'host1'), before);
    assert.equal(await answer(() => ask(a.netnsOf('sa'), 'tcp', b.ipOf('sb'), 5000)), `sb ${a.ipOf('sa')}`);
    assert.doesNotMatch(b.daemonLog, /given up by the cluster/);
  });
});
