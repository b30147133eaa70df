// The overlay across a simulated 3-host cluster on etcd: cross-host TCP,
// MTU taken from the underlay (large TCP segments and a multi-MB HTTP
// transfer), outbound NAT through the local host, isolation between two
// overlay networks, and the agent's peer tables as the kernel shows them.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestBed, ipJson, run } from '../../../test/support/harness.js';
import { ask, answer } from '../../../test/support/traffic.js';
import { Cluster, STORE_IP, waitFor, type Host } from '../../../test/support/cluster.js';
import { ECHO_SERVER } from '../../../test/support/traffic.js';

const here = dirname(fileURLToPath(import.meta.url));
const PAYLOAD_SERVER = join(here, 'payload-server.js');
const PAYLOAD_CLIENT = join(here, 'payload-client.js');

function vxlanOf(host: Host, network: string): string {
  const id = JSON.parse(host.strand(['network', 'inspect', network]).stdout)[0].Id as string;
  return `vx-${id.slice(0, 12)}`;
}

function client(netns: string, args: string[]): string {
  return run('ip', ['netns', 'exec', netns, process.execPath, PAYLOAD_CLIENT, ...args], { allowFail: true }).stdout.trim();
}

describe('overlay: a 3-host cluster on etcd', function () {
  this.timeout(180000);
  const bed = useTestBed();

  it('connects containers across hosts over VXLAN with static peers only, and NATs outbound traffic through the local host', async () => {
    const c = await Cluster.start(bed());
    const [a, b, h2] = c.hosts as [Host, Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.201.0.0/24', 'ovl']);
    // Every host sees the same network: same id, VNI and subnet.
    const onA = JSON.parse(a.strand(['network', 'inspect', 'ovl']).stdout)[0];
    const onC = JSON.parse(h2.strand(['network', 'inspect', 'ovl']).stdout)[0];
    assert.equal(onC.Id, onA.Id);
    assert.equal(onC.Driver_State.vni, onA.Driver_State.vni);
    assert.equal(onA.Scope, 'global');

    a.serve('srv-a', 'ovl', [5000]);
    b.serve('srv-b', 'ovl', [5000]);
    h2.serve('srv-c', 'ovl', [5000]);
    const ipA = a.ipOf('srv-a');
    const ipB = b.ipOf('srv-b');
    const ipC = h2.ipOf('srv-c');
    assert.equal(new Set([ipA, ipB, ipC]).size, 3, 'one global pool: no address handed out twice');

    // B → A and A → C, each answer naming the real peer address (no NAT inside the overlay).
    assert.equal(await answer(() => ask(b.netnsOf('srv-b'), 'tcp', ipA, 5000)), `srv-a ${ipB}`);
    assert.equal(await answer(() => ask(a.netnsOf('srv-a'), 'tcp', ipC, 5000)), `srv-c ${ipA}`);
    assert.equal(await answer(() => ask(h2.netnsOf('srv-c'), 'tcp', ipB, 5000)), `srv-b ${ipC}`);

    run('ip', ['netns', 'exec', b.netnsOf('srv-b'), 'ping', '-c', '2', '-i', '0.2', '-W', '2', ipC]);
    // The kernel's own view: learning off, proxy ARP on, UDP 4789, one FDB entry per remote MAC.
    const dev = vxlanOf(a, 'ovl');
    const link = ipJson<{ linkinfo: { info_data: { id: number; port: number; learning?: boolean; proxy?: boolean; local: string } } }>(['-d', 'link', 'show', dev], a.netns)[0]!;
    assert.equal(link.linkinfo.info_data.id, Number(onA.Driver_State.vni));
    assert.equal(link.linkinfo.info_data.port, 4789);
    assert.equal(link.linkinfo.info_data.local, a.ip);
    assert.equal(link.linkinfo.info_data.learning, false);
    assert.equal(link.linkinfo.info_data.proxy, true);
    const macOf = (h: Host, sb: string) => ipJson<{ address: string }>(['link', 'show', 'eth0'], h.netnsOf(sb))[0]!.address;
    const fdbA = await waitFor('A to know B and C', () => {
      const f = a.fdb(dev);
      return f.size === 2 ? f : undefined;
    });
    assert.equal(fdbA.get(macOf(b, 'srv-b')), b.ip);
    assert.equal(fdbA.get(macOf(h2, 'srv-c')), h2.ip);
    const neigh = ipJson<{ dst: string; lladdr: string; state: string[] }>(['neigh', 'show', 'dev', dev], a.netns);
    assert.ok(neigh.some((n) => n.dst === ipB && n.lladdr === macOf(b, 'srv-b') && n.state.includes('PERMANENT')));
    const dump = a.dump();
    assert.equal(dump.inSync, true);
    assert.equal(dump.tables[0]!.desired.fdb.length, 2);

    // Outbound: a server on the underlay (no route back to the overlay) sees the host's address.
    const outside = bed().process(
      (await import('node:child_process')).spawn('nsenter', [`--net=/run/netns/${c.underlay}`, process.execPath, ECHO_SERVER, 'outside', '5999'], { stdio: ['ignore', 'pipe', 'ignore'] }),
    );
    await new Promise((r) => outside.stdout!.once('data', r));
    assert.equal(await answer(() => ask(b.netnsOf('srv-b'), 'tcp', STORE_IP, 5999)), `outside ${b.ip}`);
  });

  it('sets the MTU to the underlay MTU minus 50 and carries 1400-byte segments and a multi-MB HTTP transfer', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    // An underlay that is not 1500, so a hard-coded 1450 would show.
    for (const h of c.hosts) run('ip', ['-n', h.netns, 'link', 'set', 'eth0', 'mtu', '1480']);
    a.strand(['network', 'create', '-d', 'overlay', 'big']);
    a.strand(['run', '-d', '--name', 'pa', '--network', 'big', '--', process.execPath, PAYLOAD_SERVER, '7000', '8080']);
    b.strand(['run', '-d', '--name', 'pb', '--network', 'big', '--', 'sleep', '600']);
    for (const [h, sb] of [[a, 'pa'], [b, 'pb']] as const) {
      assert.equal(ipJson<{ mtu: number }>(['link', 'show', 'eth0'], h.netnsOf(sb))[0]!.mtu, 1430, `${sb}'s eth0`);
      assert.equal(ipJson<{ mtu: number }>(['link', 'show', vxlanOf(h, 'big')], h.netns)[0]!.mtu, 1430);
    }
    const ipA = a.ipOf('pa');
    const nsB = b.netnsOf('pb');
    await waitFor('the payload server to answer', () => client(nsB, ['echo', ipA, '7000', '10']) === 'ok 10');
    assert.equal(client(nsB, ['echo', ipA, '7000', '1400']), 'ok 1400');
    assert.equal(client(nsB, ['echo', ipA, '7000', '200000']), 'ok 200000');
    assert.equal(client(nsB, ['http', ipA, '8080', String(8 * 1024 * 1024)]), `ok ${8 * 1024 * 1024}`);
    // Full-sized frames really crossed: the peer's TCP MSS follows the overlay MTU (1430 - 40).
    const ss = run('ip', ['netns', 'exec', nsB, 'ss', '-tin', 'dst', ipA]).stdout;
    assert.ok(!/mss:1460/.test(ss), ss);
  });

  it('isolates two overlay networks from each other, on the same host and across hosts', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.202.0.0/24', 'red']);
    b.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.203.0.0/24', 'blue']);
    const vniRed = JSON.parse(a.strand(['network', 'inspect', 'red']).stdout)[0].Driver_State.vni;
    const vniBlue = JSON.parse(a.strand(['network', 'inspect', 'blue']).stdout)[0].Driver_State.vni;
    assert.notEqual(vniRed, vniBlue);
    a.serve('red-a', 'red', [5000]);
    a.serve('blue-a', 'blue', [5000]);
    b.serve('red-b', 'red', [5000]);
    b.serve('blue-b', 'blue', [5000]);
    const nsRedA = a.netnsOf('red-a');
    assert.ok(await answer(() => ask(nsRedA, 'tcp', b.ipOf('red-b'), 5000)), 'red reaches red across hosts');
    assert.ok(await answer(() => ask(b.netnsOf('blue-b'), 'tcp', a.ipOf('blue-a'), 5000)), 'blue reaches blue across hosts');
    assert.equal(await ask(nsRedA, 'tcp', b.ipOf('blue-b'), 5000), null, 'red must not reach blue on another host');
    assert.equal(await ask(nsRedA, 'tcp', a.ipOf('blue-a'), 5000), null, 'red must not reach blue on the same host');
    // Each vxlan device carries only its own network's peers.
    const redDev = vxlanOf(a, 'red');
    const macs = [...a.fdb(redDev).keys()];
    const blueMacB = ipJson<{ address: string }>(['link', 'show', 'eth0'], b.netnsOf('blue-b'))[0]!.address;
    assert.ok(!macs.includes(blueMacB));
    assert.equal(macs.length, 1);
  });

  it('removes a network deleted on one host from every host, and frees its VNI', async () => {
    const c = await Cluster.start(bed(), { hosts: 2, resync: 1 });
    const [a, b] = c.hosts as [Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.204.0.0/24', 'gone']);
    const vni = JSON.parse(a.strand(['network', 'inspect', 'gone']).stdout)[0].Driver_State.vni as string;
    const dev = vxlanOf(a, 'gone');
    b.serve('sb', 'gone', [5000]);
    assert.ok(ipJson(['link', 'show'], b.netns).some((l) => (l as { ifname: string }).ifname === dev));
    // In use on B: A may not remove it, and says where.
    const refused = a.strand(['network', 'rm', 'gone'], { allowFail: true });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /host1/);
    b.strand(['rm', '-f', 'sb']);
    a.strand(['network', 'rm', 'gone']);
    await waitFor('B to drop the devices', () => !ipJson<{ ifname: string }>(['link', 'show'], b.netns).some((l) => l.ifname === dev || l.ifname === `so-${dev.slice(3)}`));
    assert.equal(b.strand(['network', 'ls', '--format', 'json']).stdout.includes('"gone"'), false);
    a.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.204.0.0/24', 'again']);
    assert.equal(JSON.parse(a.strand(['network', 'inspect', 'again']).stdout)[0].Driver_State.vni, vni);
  });

  it('carries IPv6 across hosts on a dual-stack overlay (neighbour entries answer NDP)', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    a.strand(['network', 'create', '-d', 'overlay', '--ipv6', '--subnet', '10.205.0.0/24', '--subnet', 'fd00:205::/64', 'dual']);
    a.serve('sa', 'dual', [5000]);
    b.serve('sb', 'dual', [5000]);
    const v6 = (h: Host, sb: string) => h.ps().find((s) => s.name === sb)!.addresses.find((x) => x.includes(':'))!.split('/')[0]!;
    const ipA = v6(a, 'sa');
    const ipB = v6(b, 'sb');
    assert.equal(await answer(() => ask(b.netnsOf('sb'), 'tcp', ipA, 5000)), `sa ${ipB}`);
    const dev = vxlanOf(a, 'dual');
    const neigh = ipJson<{ dst: string; state: string[] }>(['-6', 'neigh', 'show', 'dev', dev], a.netns);
    assert.ok(neigh.some((n) => n.dst === ipB && n.state.includes('PERMANENT')));
  });
});
