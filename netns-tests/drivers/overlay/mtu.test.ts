// The overlay's MTU across a cluster whose underlays differ: one host's
// link (and its switch port) at 1400 next to 1500 hosts. The network's MTU
// is the smallest underlay minus 50 on every host, existing containers
// included, so full-sized packets between a 1500 host and the 1400 host
// arrive instead of vanishing on the switch; it follows hosts that change,
// join and leave, and --opt mtu stays as given.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestBed, ip, ipJson, run } from '../../../test/support/harness.js';
import { Cluster, waitFor, type Host } from '../../../test/support/cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const PAYLOAD_SERVER = join(here, 'payload-server.js');
const PAYLOAD_CLIENT = join(here, 'payload-client.js');

const networkId = (h: Host, net: string): string => JSON.parse(h.strand(['network', 'inspect', net]).stdout)[0].Id as string;
const mtuOf = (ifname: string, netns: string): number | undefined => ipJson<{ ifname: string; mtu: number }>(['link', 'show'], netns).find((l) => l.ifname === ifname)?.mtu;

/** The MTUs of everything the network has on a host: vxlan device, bridge, the bridge's ports, and each container's eth0. */
function mtus(h: Host, id: string, sandboxes: string[]): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = { vxlan: mtuOf(`vx-${id.slice(0, 12)}`, h.netns), bridge: mtuOf(`so-${id.slice(0, 12)}`, h.netns) };
  for (const p of ipJson<{ ifname: string; mtu: number }>(['link', 'show', 'master', `so-${id.slice(0, 12)}`], h.netns)) out[`port ${p.ifname}`] = p.mtu;
  for (const sb of sandboxes) out[sb] = mtuOf('eth0', h.netnsOf(sb));
  return out;
}

const all = (m: Record<string, number | undefined>, v: number): boolean => Object.values(m).every((x) => x === v);

function client(netns: string, args: string[]): string {
  return run('ip', ['netns', 'exec', netns, process.execPath, PAYLOAD_CLIENT, ...args], { allowFail: true }).stdout.trim();
}

/**
 * Gives a host's underlay link, and the switch port it plugs into, a smaller
 * MTU. The switch then drops what does not fit, as a real one does: with
 * bridge-nf on, a Linux bridge would fragment the (DF-less) VXLAN packets
 * instead and hide a wrong MTU.
 */
function shrinkUnderlay(c: Cluster, index: number, mtu: number): void {
  run('ip', ['netns', 'exec', c.underlay, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
  ip(['link', 'set', `p${index}`, 'mtu', String(mtu)], c.underlay);
  ip(['link', 'set', 'eth0', 'mtu', String(mtu)], c.hosts[index]!.netns);
}

describe('overlay MTU across hosts with different underlays', function () {
  this.timeout(180000);
  const bed = useTestBed();

  it('lowers the network on every host, existing containers included, when a host with a 1400 underlay appears; large TCP and ping cross', async () => {
    const c = await Cluster.start(bed(), { hosts: 3, resync: 1 });
    const [a, b, h2] = c.hosts as [Host, Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.221.0.0/24', 'mixed']);
    const id = networkId(a, 'mixed');
    a.strand(['run', '-d', '--name', 'pa', '--network', 'mixed', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    b.strand(['run', '-d', '--name', 'pb', '--network', 'mixed', '--', 'sleep', '600']);
    assert.ok(all(mtus(a, id, ['pa']), 1450), JSON.stringify(mtus(a, id, ['pa'])));

    // The third host's underlay shrinks under its running agent: it republishes, and everyone follows.
    shrinkUnderlay(c, 2, 1400);
    await waitFor('A and B to lower the network to 1350', () => all(mtus(a, id, ['pa']), 1350) && all(mtus(b, id, ['pb']), 1350), 15000, 200);
    h2.strand(['run', '-d', '--name', 'pc', '--network', 'mixed', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    for (const [h, sb] of [[a, 'pa'], [b, 'pb'], [h2, 'pc']] as const) {
      const m = mtus(h, id, [sb]);
      assert.ok(all(m, 1350), `${h.id}: ${JSON.stringify(m)}`);
      assert.ok(Object.keys(m).some((k) => k.startsWith('port ')), `${h.id} has the container's veth on the bridge`);
    }

    // Between a 1500 host and the 1400 host, both ways: bulk TCP and a multi-MB HTTP body arrive intact.
    const [ipA, ipC] = [a.ipOf('pa'), h2.ipOf('pc')];
    const [nsA, nsB, nsC] = [a.netnsOf('pa'), b.netnsOf('pb'), h2.netnsOf('pc')];
    await waitFor('the payload server on the 1400 host', () => client(nsB, ['echo', ipC, '7000', '10']) === 'ok 10');
    assert.equal(client(nsB, ['echo', ipC, '7000', '1400']), 'ok 1400');
    assert.equal(client(nsB, ['echo', ipC, '7000', '300000']), 'ok 300000');
    assert.equal(client(nsB, ['http', ipC, '8080', String(8 * 1024 * 1024)]), `ok ${8 * 1024 * 1024}`);
    assert.equal(client(nsC, ['http', ipA, '8080', String(8 * 1024 * 1024)]), `ok ${8 * 1024 * 1024}`);
    // What TCP's MSS would hide: a 1400-byte ping is fragmented at the sender to fit, and arrives.
    run('ip', ['netns', 'exec', nsA, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '-s', '1400', ipC]);
    // And one that may not be fragmented is refused at the sender, naming the MTU, instead of vanishing on the switch.
    const df = run('ip', ['netns', 'exec', nsA, 'ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1400', ipC], { allowFail: true });
    assert.notEqual(df.status, 0);
    assert.match(df.stdout + df.stderr, /mtu\s*=\s*1350/i);
    for (const h of c.hosts) {
      const t = await waitFor(`${h.id} in sync`, () => {
        const d = h.dump();
        return d.inSync ? d.tables.find((x) => x.network === 'mixed') : undefined;
      });
      assert.deepEqual((t as unknown as { mtu: unknown }).mtu, { desired: 1350, actual: 1350 });
    }
  });

  it('starts a new network at the cluster\'s smallest MTU, rises again when that host leaves, and keeps --opt mtu as given', async () => {
    const c = await Cluster.start(bed(), { hosts: 3, leaseTtl: 3, resync: 1 });
    const [a, b, h2] = c.hosts as [Host, Host, Host];
    // The small host joins with its smaller underlay (a restarted agent publishes it at once).
    shrinkUnderlay(c, 2, 1400);
    await h2.killDaemon();
    await h2.startDaemon();
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.222.0.0/24', 'fresh']);
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.223.0.0/24', '-o', 'mtu=1300', 'fixed']);
    const [fresh, fixed] = [networkId(a, 'fresh'), networkId(a, 'fixed')];
    // No waiting: the host that makes the devices reads the live hosts first.
    a.strand(['run', '-d', '--name', 'fa', '--network', 'fresh', '--', 'sleep', '600']);
    b.strand(['run', '-d', '--name', 'fb', '--network', 'fresh', '--', 'sleep', '600']);
    a.strand(['run', '-d', '--name', 'xa', '--network', 'fixed', '--', 'sleep', '600']);
    assert.ok(all(mtus(a, fresh, ['fa']), 1350), JSON.stringify(mtus(a, fresh, ['fa'])));
    assert.ok(all(mtus(b, fresh, ['fb']), 1350), JSON.stringify(mtus(b, fresh, ['fb'])));
    assert.ok(all(mtus(a, fixed, ['xa']), 1300), JSON.stringify(mtus(a, fixed, ['xa'])));

    // The small host's agent dies and its lease runs out: the others go back to their own underlays' 1450.
    await h2.killDaemon();
    await waitFor('A and B back at 1450', () => all(mtus(a, fresh, ['fa']), 1450) && all(mtus(b, fresh, ['fb']), 1450), 15000, 200);
    assert.ok(all(mtus(a, fixed, ['xa']), 1300), '--opt mtu is left alone');
    run('ip', ['netns', 'exec', a.netnsOf('fa'), 'ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1400', b.ipOf('fb')]);
  });
});
