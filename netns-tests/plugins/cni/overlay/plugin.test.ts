// strand-overlay, the CNI plugin for overlay networks, on a simulated cluster:
// pods (namespaces the test makes) attached through each host's installed
// plugin, which hands every verb to that host's `strand daemon`. Traffic,
// peers' FDB entries, CHECK, GC, a daemon restart, bad input and a missing
// daemon, each read back from the kernel and the store.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestBed, ipJson, run, type TestBed } from '../../../../test/support/harness.js';
import { answer, ask, serve } from '../../../../test/support/traffic.js';
import { invokePluginRaw } from '../../../../plugins/cni/protocol/exec.js';
import { expectCniError, runConflist, type Conflist, type RunOptions } from '../../../../test/support/cni-runtime.js';
import { Cluster, installCniOn, waitFor, type Host } from '../../../../test/support/cluster.js';

const conflist = (network: string, extra: Record<string, unknown> = {}): Conflist => ({
  cniVersion: '1.1.0',
  name: 'pods',
  plugins: [{ type: 'strand-overlay', network, capabilities: { ips: true, mac: true, portMappings: true }, ...extra }],
});

interface Node {
  host: Host;
  path: string[];
  opts(pod: string, containerId: string, extra?: Partial<RunOptions>): RunOptions;
}

/** A host as a CNI runtime sees it: its plugins installed, a result cache of its own. */
function node(bed: TestBed, host: Host): Node {
  const path = installCniOn(host);
  const cacheDir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-ovl-cni-cache-')));
  return { host, path, opts: (pod, containerId, extra = {}) => ({ verb: 'ADD', containerId, netns: `/run/netns/${pod}`, ifName: 'eth0', path, cacheDir, ...extra }) };
}

/** Two hosts whose daemons serve CNI, plugins installed on both, and `strand network create -d overlay ARGS` run on host `createOn`. */
async function twoHosts(b: TestBed, create: string[], createOn: 0 | 1 = 0): Promise<{ c: Cluster; h0: Host; h1: Host; n0: Node; n1: Node }> {
  const c = await Cluster.start(b, { hosts: 2, cni: true });
  const [h0, h1] = c.hosts as [Host, Host];
  [h0, h1][createOn]!.strand(['network', 'create', '-d', 'overlay', ...create]);
  return { c, h0, h1, n0: node(b, h0), n1: node(b, h1) };
}

const links = (netns: string): { ifname: string; address: string; mtu: number; master?: string }[] => ipJson(['link', 'show'], netns);
const cniVeths = (h: Host): string[] => links(h.netns).map((l) => l.ifname).filter((n) => n.startsWith('svcni') || n.startsWith('stcni'));
const endpointsOn = (h: Host, network: string): Record<string, { MacAddress: string; Addresses: string[] }> => JSON.parse(h.strand(['network', 'inspect', network]).stdout)[0].Endpoints;
const vxlanOf = (h: Host, network: string): string => `vx-${(JSON.parse(h.strand(['network', 'inspect', network]).stdout)[0].Id as string).slice(0, 12)}`;
/** The MACs every host's agent is told about, from the store (core/global/endpoints), as `daemon dump` reads them. */
const desiredMacs = (h: Host): string[] => h.dump().tables.flatMap((t) => t.desired.fdb.map((f) => f.mac));

describe('strand-overlay CNI plugin on a simulated cluster', function () {
  this.timeout(240000);
  const bed = useTestBed();

  it('attaches pods on two hosts that reach each other and a strand run container on a third; peers learn and forget the MAC; CHECK; a daemon restart keeps the pods', async () => {
    const c = await Cluster.start(bed(), { cni: true });
    const [h0, h1, h2] = c.hosts as [Host, Host, Host];
    h0.strand(['network', 'create', '-d', 'overlay', '--subnet', '10.210.0.0/24', 'ovl']);
    const [n0, n1] = [node(bed(), h0), node(bed(), h1)];
    const p0 = bed().netns('p0').name;
    const p1 = bed().netns('p1').name;
    const list = conflist('ovl');

    const add0 = await runConflist(list, { ...n0.opts(p0, 'pod0'), verb: 'ADD' });
    // A pod asking for its address and MAC, as kubelet's ips/mac capabilities do.
    const ports = [{ hostPort: 18080, containerPort: 5000, protocol: 'tcp' }];
    const add1 = await runConflist(list, { ...n1.opts(p1, 'pod1', { capabilityArgs: { ips: ['10.210.0.77'], mac: '02:00:0a:d2:00:4d', portMappings: ports } }), verb: 'ADD' });
    h2.serve('srv-c', 'ovl', [5000]);

    // The result: bridge, host veth, the pod's interface; the address on interface 2 with its gateway; a default route.
    const r0 = add0.result;
    assert.equal(r0.interfaces?.length, 3);
    assert.match(r0.interfaces![0]!.name, /^so-[0-9a-f]{12}$/);
    assert.match(r0.interfaces![1]!.name, /^svcni[0-9a-f]{9}$/);
    assert.deepEqual([r0.interfaces![2]!.name, r0.interfaces![2]!.sandbox], ['eth0', `/run/netns/${p0}`]);
    assert.equal(r0.ips?.length, 1);
    assert.equal(r0.ips![0]!.interface, 2);
    assert.equal(r0.ips![0]!.gateway, '10.210.0.1');
    assert.deepEqual(r0.routes, [{ dst: '0.0.0.0/0', gw: '10.210.0.1' }]);
    assert.equal(add1.result.ips![0]!.address, '10.210.0.77/24');
    const ip0 = r0.ips![0]!.address.split('/')[0]!;
    const ip1 = '10.210.0.77';
    const ipC = h2.ipOf('srv-c');
    assert.equal(new Set([ip0, ip1, ipC]).size, 3, 'one cluster-wide pool');

    // The kernel, read independently: address, MAC, the overlay MTU (underlay 1500 - 50), default route, veth on the overlay bridge.
    const eth0 = ipJson<{ address: string; mtu: number; addr_info: { local: string; prefixlen: number }[] }>(['addr', 'show', 'dev', 'eth0'], p0)[0]!;
    assert.ok(eth0.addr_info.some((a) => a.local === ip0 && a.prefixlen === 24));
    assert.equal(eth0.mtu, 1450);
    assert.equal(eth0.address, r0.interfaces![2]!.mac);
    assert.equal(ipJson<{ address: string }>(['link', 'show', 'eth0'], p1)[0]!.address, '02:00:0a:d2:00:4d');
    assert.ok(ipJson<{ dst: string; gateway?: string }>(['route', 'show'], p0).some((r) => r.dst === 'default' && r.gateway === '10.210.0.1'));
    const veth0 = links(h0.netns).find((l) => l.ifname === r0.interfaces![1]!.name);
    assert.equal(veth0?.master, r0.interfaces![0]!.name);

    // Traffic: pod ↔ pod across hosts (TCP both ways, ping) and pod → a strand run container on host2, no NAT inside the overlay.
    await serve(bed(), p0, 'tcp', 5000, 'pod0');
    await serve(bed(), p1, 'tcp', 5000, 'pod1');
    assert.equal(await answer(() => ask(p1, 'tcp', ip0, 5000)), `pod0 ${ip1}`);
    assert.equal(await answer(() => ask(p0, 'tcp', ip1, 5000)), `pod1 ${ip0}`);
    run('ip', ['netns', 'exec', p0, 'ping', '-c', '2', '-i', '0.2', '-W', '2', ip1]);
    assert.equal(await answer(() => ask(p0, 'tcp', ipC, 5000)), `srv-c ${ip0}`);
    assert.equal(await answer(() => ask(h2.netnsOf('srv-c'), 'tcp', ip1, 5000)), `pod1 ${ipC}`);
    // pod1's published port, reached on host1's underlay address from host0's own namespace.
    assert.match((await answer(() => ask(h0.netns, 'tcp', h1.ip, 18080))) ?? '', /^pod1 /);

    // The other hosts' vxlan FDB points pod0's MAC at host0's VTEP.
    const mac0 = eth0.address;
    const dev = vxlanOf(h0, 'ovl');
    for (const h of [h1, h2]) await waitFor(`${h.id} to learn pod0's MAC`, () => h.fdb(dev).get(mac0) === h0.ip);

    // CHECK passes against the namespace, and fails once the pod's address is gone.
    await runConflist(list, { ...n0.opts(p0, 'pod0'), verb: 'CHECK' });
    await runConflist(list, { ...n1.opts(p1, 'pod1'), verb: 'CHECK' });

    // A daemon restart (kill -9, as a crash) keeps the attachment: record, veth, peers and traffic.
    await h0.killDaemon();
    await h0.startDaemon([], { cni: true });
    assert.deepEqual(Object.values(endpointsOn(h0, 'ovl')).map((e) => e.MacAddress), [mac0], 'the CNI endpoint record survives');
    assert.ok(links(h0.netns).some((l) => l.ifname === r0.interfaces![1]!.name && l.master === r0.interfaces![0]!.name), 'the veth stays on the bridge');
    assert.equal(await answer(() => ask(p1, 'tcp', ip0, 5000)), `pod0 ${ip1}`);
    await runConflist(list, { ...n0.opts(p0, 'pod0'), verb: 'CHECK' });

    // The network cannot be removed under a pod, and the refusal names the pod's endpoint.
    const refused = h0.strand(['network', 'rm', 'ovl'], { allowFail: true });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /still has 1 endpoint\(s\).*detached endpoint cni[0-9a-f]{9}/);

    run('ip', ['-n', p0, 'addr', 'del', `${ip0}/24`, 'dev', 'eth0']);
    await expectCniError(runConflist(list, { ...n0.opts(p0, 'pod0'), verb: 'CHECK' }), 999, new RegExp(`address ${ip0.replace(/\./g, '\\.')}/24 is missing from eth0`));

    // DEL: the veth, the record and the cluster-wide entry go; the peers forget the MAC; the address is free again.
    await runConflist(list, { ...n0.opts(p0, 'pod0'), verb: 'DEL' });
    assert.deepEqual(cniVeths(h0), []);
    assert.ok(!links(p0).some((l) => l.ifname === 'eth0'));
    assert.deepEqual(endpointsOn(h0, 'ovl'), {});
    for (const h of [h1, h2]) await waitFor(`${h.id} to forget pod0's MAC`, () => !h.fdb(dev).has(mac0) && !desiredMacs(h).includes(mac0));
    // DEL again, of an unknown container, and with the namespace gone: all succeed.
    await runConflist(list, { ...n0.opts(p0, 'pod0'), verb: 'DEL' });
    await runConflist(list, { ...n0.opts(p0, 'nobody'), verb: 'DEL' });
    await runConflist(list, { ...n0.opts('sxgone', 'pod0'), verb: 'DEL' });
    const again = await runConflist(list, { ...n0.opts(p0, 'pod0b', { capabilityArgs: { ips: [ip0] } }), verb: 'ADD' });
    assert.equal(again.result.ips![0]!.address, `${ip0}/24`, 'the DELed address was released');
    await runConflist(list, { ...n0.opts(p0, 'pod0b'), verb: 'DEL' });
    await runConflist(list, { ...n1.opts(p1, 'pod1', { capabilityArgs: { portMappings: ports } }), verb: 'DEL' });
    assert.deepEqual(cniVeths(h1), []);
    assert.doesNotMatch(run('ip', ['netns', 'exec', h1.netns, 'iptables-save']).stdout, /18080/, 'the published port is gone');
  });

  it('GC removes only stale attachments of this host; bad input and a missing daemon leave nothing; STATUS', async () => {
    const { c, h0, h1, n0, n1 } = await twoHosts(bed(), ['--subnet', '10.211.0.0/24', 'ovl']);
    h0.strand(['network', 'create', '--subnet', '10.212.0.0/24', 'plain']);
    const [pa, pb, pc] = ['pa', 'pb', 'pc'].map((t) => bed().netns(t).name) as [string, string, string];
    const list = conflist('ovl');
    await runConflist(list, { ...n0.opts(pa, 'a'), verb: 'ADD' });
    await runConflist(list, { ...n0.opts(pb, 'b'), verb: 'ADD' });
    await runConflist(list, { ...n1.opts(pc, 'c'), verb: 'ADD' });
    // Another CNI network on the same overlay: its attachments are not this list's to collect.
    const other = { ...conflist('ovl'), name: 'other' };
    const pe = bed().netns('pe').name;
    await runConflist(other, { ...n0.opts(pe, 'e'), verb: 'ADD' });
    await runConflist(list, { ...n0.opts('', ''), verb: 'STATUS' });
    await expectCniError(runConflist(conflist('nosuch'), { ...n0.opts('', ''), verb: 'STATUS' }), 50, /network "nosuch" does not exist/);

    // GC on host0 keeping only a: b goes (veth, record, address), host1's c is another host's and stays.
    const macB = ipJson<{ address: string }>(['link', 'show', 'eth0'], pb)[0]!.address;
    const ipB = ipJson<{ addr_info: { local: string; family: string }[] }>(['addr', 'show', 'dev', 'eth0'], pb)[0]!.addr_info.find((a) => a.family === 'inet')!.local;
    // An empty cache dir: GC's list alone decides, as after a node reboot lost the runtime's cache.
    const fresh = bed().tempDir(mkdtempSync(join(tmpdir(), 'strand-ovl-cni-cache-')));
    await runConflist(list, { ...n0.opts('', ''), cacheDir: fresh, verb: 'GC', validAttachments: [{ containerId: 'a', ifName: 'eth0' }] });
    assert.equal(cniVeths(h0).length, 2);
    assert.ok(!links(pb).some((l) => l.ifname === 'eth0'), "b's interface is gone");
    assert.ok(links(pa).some((l) => l.ifname === 'eth0'), "a's interface stays");
    assert.ok(links(pe).some((l) => l.ifname === 'eth0'), "the other CNI network's e stays");
    assert.equal(Object.keys(endpointsOn(h0, 'ovl')).length, 2);
    await runConflist(other, { ...n0.opts(pe, 'e'), verb: 'DEL' });
    assert.equal(Object.keys(endpointsOn(h1, 'ovl')).length, 1, "host1's attachment is not host0's to collect");
    assert.equal(cniVeths(h1).length, 1);
    await waitFor("host1 to forget b's MAC", () => !desiredMacs(h1).includes(macB));
    // b's address was released with it.
    const b2 = await runConflist(list, { ...n0.opts(pb, 'b2', { capabilityArgs: { ips: [ipB] } }), verb: 'ADD' });
    assert.equal(b2.result.ips![0]!.address, `${ipB}/24`);
    await runConflist(list, { ...n0.opts(pb, 'b2'), verb: 'DEL' });

    // Bad input: the right code, and nothing made (no veth, no record, no interface in the pod).
    const pd = bed().netns('pd').name;
    const before = { veths: cniVeths(h0), eps: Object.keys(endpointsOn(h0, 'ovl')), macs: desiredMacs(h1) };
    const nothingMade = () => {
      assert.deepEqual(cniVeths(h0), before.veths);
      assert.deepEqual(Object.keys(endpointsOn(h0, 'ovl')), before.eps);
      assert.deepEqual(endpointsOn(h0, 'plain'), {});
      assert.deepEqual(desiredMacs(h1).sort(), before.macs.sort());
      assert.deepEqual(links(pd).map((l) => l.ifname), ['lo']);
    };
    await expectCniError(runConflist(conflist('nosuch'), { ...n0.opts(pd, 'd'), verb: 'ADD' }), 7, /network "nosuch" does not exist: create it with "strand network create -d overlay/);
    nothingMade();
    await expectCniError(runConflist(conflist('plain'), { ...n0.opts(pd, 'd'), verb: 'ADD' }), 7, /"plain" is a bridge network, not an overlay one/);
    nothingMade();
    await expectCniError(runConflist(list, { ...n0.opts(pd, 'd', { capabilityArgs: { ips: ['10.99.0.5'] } }), verb: 'ADD' }), 7, /requested IP 10\.99\.0\.5 is not in network "ovl" \(subnet 10\.211\.0\.0\/24\)/);
    nothingMade();
    await expectCniError(runConflist(list, { ...n0.opts(pd, 'd', { cniArgs: 'IP=10.211.0.1' }), verb: 'ADD' }), 7, /10\.211\.0\.1 is the gateway/);
    nothingMade();
    await expectCniError(runConflist(conflist('ovl', { mtu: 9000 }), { ...n0.opts(pd, 'd'), verb: 'ADD' }), 7, /"mtu" cannot be set per attachment/);
    nothingMade();
    // An address another pod holds: refused, and the refusal frees nothing of the holder's.
    const held = ipJson<{ addr_info: { local: string; family: string }[] }>(['addr', 'show', 'dev', 'eth0'], pa)[0]!.addr_info.find((a) => a.family === 'inet')!.local;
    await expectCniError(runConflist(list, { ...n0.opts(pd, 'd', { capabilityArgs: { ips: [held] } }), verb: 'ADD' }), 999, new RegExp(held.replace(/\./g, '\\.')));
    nothingMade();
    await runConflist(list, { ...n0.opts(pa, 'a'), verb: 'CHECK' });

    // No daemon: the installed front falls back to the Node plugin, which refuses with 11 and does nothing.
    await h0.killDaemon();
    await expectCniError(runConflist(list, { ...n0.opts(pd, 'd'), verb: 'ADD' }), 11, /needs a running strand daemon with its overlay agent.*nothing was changed/);
    await expectCniError(runConflist(list, { ...n0.opts('', ''), verb: 'STATUS' }), 50, /strand daemon/);
    const version = await invokePluginRaw({ type: 'strand-overlay', path: n0.path, command: 'VERSION', containerId: '', netns: '', ifName: '', args: '', config: { cniVersion: '1.1.0' } });
    assert.equal(version.exitCode, 0);
    assert.ok((JSON.parse(version.stdout) as { supportedVersions: string[] }).supportedVersions.includes('1.1.0'));
    nothingMade();
    await h0.startDaemon([], { cni: true });
    nothingMade();

    // The store down: STATUS says not ready (50), ADD asks to try again (11); nothing made once it is back.
    await c.store.kill();
    await expectCniError(runConflist(list, { ...n0.opts('', ''), verb: 'STATUS' }), 50, /store/);
    await expectCniError(runConflist(list, { ...n0.opts(pd, 'd'), verb: 'ADD' }), 11, /./);
    await c.store.start();
    nothingMade();
    await runConflist(list, { ...n0.opts(pa, 'a'), verb: 'DEL' });
    await runConflist(list, { ...n1.opts(pc, 'c'), verb: 'DEL' });
    assert.deepEqual([...cniVeths(h0), ...cniVeths(h1)], []);
  });

  it('gives a pod on a dual-stack overlay one address per family, both default routes and the config\'s dns, in a 1.0.0 result', async () => {
    const { h0, h1, n0, n1 } = await twoHosts(bed(), ['--ipv6', '--subnet', '10.213.0.0/24', '--subnet', 'fd00:213::/64', 'dual']);
    const [pa, pb] = [bed().netns('pa').name, bed().netns('pb').name];
    const dns = { nameservers: ['10.213.0.53'], search: ['pods.example'] };
    const list = { ...conflist('dual', { dns }), cniVersion: '1.0.0' };
    const a = await runConflist(list, { ...n0.opts(pa, 'a', { capabilityArgs: { ips: ['fd00:213::a'] } }), verb: 'ADD' });
    await runConflist(list, { ...n1.opts(pb, 'b'), verb: 'ADD' });
    assert.equal(a.raw.cniVersion, '1.0.0');
    assert.deepEqual(a.result.ips!.map((ip) => ip.address.includes(':') ? ip.address : 'v4').sort(), ['fd00:213::a/64', 'v4']);
    assert.deepEqual(a.result.routes!.map((r) => r.dst).sort(), ['0.0.0.0/0', '::/0']);
    assert.deepEqual(a.result.dns, dns, "the config's dns is the result's");
    assert.ok(ipJson<{ dst: string }>(['-6', 'route', 'show'], pa).some((r) => r.dst === 'default'));
    await serve(bed(), pa, 'tcp', 5000, 'a');
    const v6b = ipJson<{ addr_info: { local: string; family: string; scope: string }[] }>(['addr', 'show', 'dev', 'eth0'], pb)[0]!.addr_info.find((x) => x.family === 'inet6' && x.scope === 'global')!.local;
    assert.equal(await answer(() => ask(pb, 'tcp', 'fd00:213::a', 5000)), `a ${v6b}`);
    await runConflist(list, { ...n0.opts(pa, 'a'), verb: 'CHECK' });
    await runConflist(list, { ...n0.opts(pa, 'a'), verb: 'DEL' });
    await runConflist(list, { ...n1.opts(pb, 'b'), verb: 'DEL' });
    assert.deepEqual([...cniVeths(h0), ...cniVeths(h1)], []);
  });

  it('serves 8 concurrent ADDs on a host that has no endpoint on the network yet, then 8 concurrent DELs', async () => {
    // Made on host1: host0 has neither the network's bridge nor its vxlan device when the ADDs arrive.
    const { h0, n0 } = await twoHosts(bed(), ['--subnet', '10.214.0.0/24', 'busy'], 1);
    const pods = Array.from({ length: 8 }, (_, i) => bed().netns(`c${i}`).name);
    const list = conflist('busy');
    const added = await Promise.all(pods.map((p, i) => runConflist(list, { ...n0.opts(p, `ctr${i}`), verb: 'ADD' })));
    const ips = added.map((a) => a.result.ips![0]!.address);
    assert.equal(new Set(ips).size, 8, ips.join(' '));
    assert.equal(cniVeths(h0).length, 8);
    await serve(bed(), pods[0]!, 'tcp', 5000, 'first');
    assert.equal(await answer(() => ask(pods[7]!, 'tcp', ips[0]!.split('/')[0]!, 5000)), `first ${ips[7]!.split('/')[0]}`);
    await Promise.all(pods.map((p, i) => runConflist(list, { ...n0.opts(p, `ctr${i}`), verb: 'DEL' })));
    assert.deepEqual(cniVeths(h0), []);
    assert.deepEqual(endpointsOn(h0, 'busy'), {});
  });

  it('a daemon killed -9 during ADD: after its restart, DEL leaves no veth, record or address behind', async () => {
    // A /29: five addresses besides the gateway, so one leaked address shows as a refused fifth ADD.
    const { h0, n0 } = await twoHosts(bed(), ['--subnet', '10.215.0.0/29', 'small'], 1);
    const list = conflist('small');
    // Where a kill lands depends on the machine's speed; here these delays spread over a whole ADD
    // (before the record, the record without its veth, after the answer). Only the end state is checked.
    for (const [i, delayMs] of [5, 30, 40, 50, 55, 60, 100].entries()) {
      const pod = bed().netns(`k${i}`).name;
      const add = runConflist(list, { ...n0.opts(pod, `killed${i}`), verb: 'ADD' }).then(() => 'done', (e: Error) => e.message);
      await new Promise((r) => setTimeout(r, delayMs));
      await h0.killDaemon();
      await add;
      await h0.startDaemon([], { cni: true });
      await runConflist(list, { ...n0.opts(pod, `killed${i}`), verb: 'DEL' });
      assert.deepEqual(cniVeths(h0), [], `trial ${i}: a veth is left`);
      assert.deepEqual(endpointsOn(h0, 'small'), {}, `trial ${i}: a record is left`);
      assert.deepEqual(links(pod).map((l) => l.ifname), ['lo'], `trial ${i}: the pod keeps an interface`);
    }
    const pods = Array.from({ length: 5 }, (_, i) => bed().netns(`f${i}`).name);
    for (const [i, p] of pods.entries()) await runConflist(list, { ...n0.opts(p, `full${i}`), verb: 'ADD' });
    await expectCniError(runConflist(list, { ...n0.opts(bed().netns('f5').name, 'full5'), verb: 'ADD' }), 999, /./);
    for (const [i, p] of pods.entries()) await runConflist(list, { ...n0.opts(p, `full${i}`), verb: 'DEL' });
    assert.deepEqual(cniVeths(h0), []);
  });
});
