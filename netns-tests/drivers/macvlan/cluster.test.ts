// The macvlan driver across the simulated cluster: each host's containers
// sit straight on the underlay switch (parent eth0), so containers on
// different hosts, the hosts and a router on the underlay reach each other
// at their own addresses. Modes checked by traffic: bridge lets siblings on
// one parent talk, private never, vepa only when the switch hairpins;
// passthru holds one container. macvlan networks are local scope, as
// Docker's: each host allocates from its own address space, so hosts on one
// subnet split it with --ip-range (or --ip).
import assert from 'node:assert/strict';
import { useTestBed, ip, ipJson, run, type TestBed } from '../../../test/support/harness.js';
import { ask, answer, serve } from '../../../test/support/traffic.js';
import { Cluster, SUBNET, type Host } from '../../../test/support/cluster.js';

const ROUTER_IP = `${SUBNET}.254`;
/** An address beyond the router, reachable only through the containers' default route. */
const BEYOND = '203.0.113.1';

/** A namespace on the underlay switch acting as the LAN's router, with an echo server on BEYOND. */
async function router(bed: TestBed, c: Cluster): Promise<string> {
  const r = bed.netns('r');
  ip(['link', 'add', 'rtr0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', r.name], c.underlay);
  ip(['link', 'set', 'rtr0', 'master', 'sw', 'up'], c.underlay);
  ip(['link', 'set', 'lo', 'up'], r.name);
  ip(['link', 'set', 'eth0', 'up'], r.name);
  ip(['addr', 'add', `${ROUTER_IP}/24`, 'dev', 'eth0'], r.name);
  ip(['addr', 'add', `${BEYOND}/32`, 'dev', 'lo'], r.name);
  await serve(bed, r.name, 'tcp', 5999, 'router');
  return r.name;
}

/** A second link from a host to the underlay switch (a passthru parent must not be the host's own eth0). */
function secondPort(c: Cluster, h: Host, swPort: string): void {
  ip(['link', 'add', swPort, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', h.netns], c.underlay);
  ip(['link', 'set', swPort, 'master', 'sw', 'up'], c.underlay);
  // Two links on one LAN: eth1 must not answer ARP for eth0's address (which would pull the host's traffic onto it).
  run('ip', ['netns', 'exec', h.netns, 'sysctl', '-qw', 'net.ipv4.conf.eth1.arp_ignore=1']);
  ip(['link', 'set', 'eth1', 'up'], h.netns);
}

function lanOn(h: Host, name: string, ipRange: string, extra: string[] = []): void {
  h.strand(['network', 'create', '-d', 'macvlan', '--subnet', `${SUBNET}.0/24`, '--gateway', ROUTER_IP, '--ip-range', ipRange, '-o', 'parent=eth0', ...extra, name]);
}

type MacvlanLink = { ifname: string; address: string; mtu: number; linkinfo: { info_kind: string; info_data: { mode: string } } };
const eth0Of = (h: Host, sb: string): MacvlanLink => ipJson<MacvlanLink>(['-d', 'link', 'show', 'dev', 'eth0'], h.netnsOf(sb))[0]!;

const inRange = (addr: string, first: number, last: number): boolean => {
  const last8 = Number(addr.split('.')[3]);
  return addr.startsWith(`${SUBNET}.`) && last8 >= first && last8 <= last;
};

describe('macvlan across the simulated cluster', function () {
  this.timeout(180000);
  const bed = useTestBed();

  it('puts containers of different hosts on the underlay: they talk to each other, to the hosts and through a router, without NAT', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    await router(bed(), c);
    // One subnet, split per host: each host's IPAM hands out only its own range.
    lanOn(a, 'lan', `${SUBNET}.64/28`);
    lanOn(b, 'lan', `${SUBNET}.80/28`);
    const net = JSON.parse(a.strand(['network', 'inspect', 'lan']).stdout)[0];
    assert.equal(net.Scope, 'local');
    a.serve('ma', 'lan', [5000]);
    b.serve('mb', 'lan', [5000]);
    b.serve('mc', 'lan', [5000], ['--ip', `${SUBNET}.200`]);
    const [ipA, ipB] = [a.ipOf('ma'), b.ipOf('mb')];
    assert.ok(inRange(ipA, 64, 79), ipA);
    assert.ok(inRange(ipB, 80, 95), ipB);
    assert.equal(b.ipOf('mc'), `${SUBNET}.200`, 'an explicit --ip outside the range');
    const link = eth0Of(a, 'ma');
    assert.equal(link.linkinfo.info_kind, 'macvlan');
    assert.equal(link.linkinfo.info_data.mode, 'bridge');
    assert.equal(link.mtu, 1500);

    // Container to container across hosts, each answer naming the real peer (no NAT).
    assert.equal(await answer(() => ask(a.netnsOf('ma'), 'tcp', ipB, 5000)), `mb ${ipA}`);
    assert.equal(await answer(() => ask(b.netnsOf('mb'), 'tcp', ipA, 5000)), `ma ${ipB}`);
    assert.equal(await answer(() => ask(a.netnsOf('ma'), 'tcp', `${SUBNET}.200`, 5000)), `mc ${ipA}`);
    run('ip', ['netns', 'exec', b.netnsOf('mb'), 'ping', '-c', '2', '-i', '0.2', '-W', '2', ipA]);
    // Siblings on one host in bridge mode.
    assert.equal(await answer(() => ask(b.netnsOf('mb'), 'tcp', `${SUBNET}.200`, 5000)), `mc ${ipB}`);
    // Through the gateway to an address only the router holds.
    assert.equal(await answer(() => ask(b.netnsOf('mb'), 'tcp', BEYOND, 5999)), `router ${ipB}`);
    // Another host reaches a container directly; its own host cannot (a macvlan's parent never sees its children's frames).
    assert.equal(await answer(() => ask(b.netns, 'tcp', ipA, 5000)), `ma ${b.ip}`);
    assert.equal(await ask(a.netns, 'tcp', ipA, 5000, 1000), null);
  });

  it('allocates per host, as Docker\'s local-scope macvlan does: without disjoint --ip-range two hosts hand out the same address', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    for (const h of [a, b]) h.strand(['network', 'create', '-d', 'macvlan', '--subnet', '10.232.0.0/24', '-o', 'parent=eth0', 'flat']);
    a.strand(['run', '-d', '--name', 'fa', '--network', 'flat', '--', 'sleep', '600']);
    b.strand(['run', '-d', '--name', 'fb', '--network', 'flat', '--', 'sleep', '600']);
    // Same first address on both: the store keeps each host's local space apart, so nothing stops the clash.
    assert.equal(a.ipOf('fa'), b.ipOf('fb'));
    // Two ids: the networks are separate records that happen to share a name.
    assert.notEqual(JSON.parse(a.strand(['network', 'inspect', 'flat']).stdout)[0].Id, JSON.parse(b.strand(['network', 'inspect', 'flat']).stdout)[0].Id);
  });

  it('shows the modes\' differences by traffic: bridge siblings talk, private never, vepa only through a hairpinning switch', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    const modes = { bridge: 1, private: 2, vepa: 3 } as const;
    for (const [mode, n] of Object.entries(modes)) {
      a.strand(['network', 'create', '-d', 'macvlan', '--subnet', `10.233.${n}.0/24`, '--ip-range', `10.233.${n}.0/25`, '-o', 'parent=eth0', '-o', `macvlan_mode=${mode}`, mode]);
      b.strand(['network', 'create', '-d', 'macvlan', '--subnet', `10.233.${n}.0/24`, '--ip-range', `10.233.${n}.128/25`, '-o', 'parent=eth0', '-o', `macvlan_mode=${mode}`, mode]);
      a.serve(`${mode}1`, mode, [5000]);
      a.serve(`${mode}2`, mode, [5000]);
      b.serve(`${mode}3`, mode, [5000]);
      assert.equal(eth0Of(a, `${mode}1`).linkinfo.info_data.mode, mode);
    }
    const sibling = (mode: string, ms = 1000) => ask(a.netnsOf(`${mode}1`), 'tcp', a.ipOf(`${mode}2`), 5000, ms);
    // Every mode reaches the other host: the restriction is only between children of one parent.
    for (const mode of Object.keys(modes)) assert.equal(await answer(() => ask(a.netnsOf(`${mode}1`), 'tcp', b.ipOf(`${mode}3`), 5000)), `${mode}3 ${a.ipOf(`${mode}1`)}`, mode);
    assert.equal(await answer(() => sibling('bridge')), `bridge2 ${a.ipOf('bridge1')}`);
    assert.equal(await sibling('private'), null, 'private: siblings never talk');
    assert.equal(await sibling('vepa'), null, 'vepa: frames go to the switch, which does not send them back');

    // The switch port of host A hairpins now (a VEPA-capable switch): vepa siblings talk through it, private ones still not.
    run('bridge', ['-n', c.underlay, 'link', 'set', 'dev', 'p0', 'hairpin', 'on']);
    assert.equal(await answer(() => sibling('vepa')), `vepa2 ${a.ipOf('vepa1')}`);
    assert.equal(await sibling('private', 2000), null, 'private: not even through a hairpinning switch');
  });

  it('gives a passthru parent to one container and refuses a second clearly, leaving nothing behind', async () => {
    const c = await Cluster.start(bed(), { hosts: 2 });
    const [a, b] = c.hosts as [Host, Host];
    secondPort(c, b, 'p1b');
    lanOn(a, 'lan', `${SUBNET}.64/28`);
    b.strand(['network', 'create', '-d', 'macvlan', '--subnet', `${SUBNET}.0/24`, '--gateway', ROUTER_IP, '--ip-range', `${SUBNET}.96/28`, '-o', 'parent=eth1', '-o', 'macvlan_mode=passthru', 'pass']);
    a.serve('ma', 'lan', [5000]);
    b.serve('p1', 'pass', [5000]);
    const parentMac = ipJson<{ address: string }>(['link', 'show', 'dev', 'eth1'], b.netns)[0]!.address;
    const link = eth0Of(b, 'p1');
    assert.equal(link.linkinfo.info_data.mode, 'passthru');
    assert.equal(link.address, parentMac, 'a passthru macvlan takes its parent\'s MAC');
    assert.equal(await answer(() => ask(b.netnsOf('p1'), 'tcp', a.ipOf('ma'), 5000)), `ma ${b.ipOf('p1')}`);
    assert.equal(await answer(() => ask(a.netnsOf('ma'), 'tcp', b.ipOf('p1'), 5000)), `p1 ${a.ipOf('ma')}`);

    const before = b.ps().map((s) => s.name);
    const refused = b.strand(['run', '-d', '--name', 'p2', '--network', 'pass', '--', 'sleep', '600'], { allowFail: true });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /passthru/);
    assert.match(refused.stderr, /eth1/);
    assert.match(refused.stderr, /one container/);
    assert.deepEqual(b.ps().map((s) => s.name), before, 'no sandbox left from the refused run');
    const endpoints = Object.values(JSON.parse(b.strand(['network', 'inspect', 'pass']).stdout)[0].Endpoints) as { MacAddress: string }[];
    assert.equal(endpoints.length, 1);
    assert.equal(endpoints[0]!.MacAddress, parentMac, 'the record shows the MAC the container really has');
    // The parent is free again once its container goes.
    b.strand(['rm', '-f', 'p1']);
    b.strand(['run', '-d', '--name', 'p3', '--network', 'pass', '--', 'sleep', '600']);
    assert.ok(inRange(b.ipOf('p3'), 96, 111));
  });

  it('says clearly that this kernel has no 802.1q and no ipvlan, and makes nothing', async () => {
    const c = await Cluster.start(bed(), { hosts: 1 });
    const [a] = c.hosts as [Host];
    const vlan = a.strand(['network', 'create', '-d', 'macvlan', '--subnet', '10.234.0.0/24', '-o', 'parent=eth0.10', 'tagged'], { allowFail: true });
    assert.notEqual(vlan.status, 0);
    assert.match(vlan.stderr, /eth0\.10/);
    assert.match(vlan.stderr, /802\.1q/);
    const ipvlan = a.strand(['network', 'create', '-d', 'ipvlan', '--subnet', '10.234.0.0/24', '-o', 'parent=eth0', 'iv'], { allowFail: true });
    assert.notEqual(ipvlan.status, 0);
    assert.match(ipvlan.stderr, /ipvlan/);
    assert.match(ipvlan.stderr, /kernel/);
    assert.match(ipvlan.stderr, /macvlan/);
    assert.deepEqual(JSON.parse(a.strand(['network', 'ls', '--format', 'json']).stdout), []);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], a.netns).map((l) => l.ifname).sort(), ['eth0', 'lo']);
  });
});
