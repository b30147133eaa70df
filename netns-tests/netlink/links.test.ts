import assert from 'node:assert/strict';
import { useTestBed, ipJson, ip, linkNames, uniqueName } from '../../test/support/harness.js';
import { StrandError } from '../../common/errors.js';

interface IpLink {
  // fields of `ip -j -d link show`
  ifname: string;
  ifindex: number;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  link_netnsid?: number;
  group?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
}

const ipLink = (name: string, netns?: string): IpLink => ipJson<IpLink>(['-d', 'link', 'show', 'dev', name], netns)[0]!;

describe('netlink links', () => {
  const bed = useTestBed();

  it('creates a veth pair with its peer straight in another namespace, up, with MTU and MACs', () => {
    const { name: nsName, ns } = bed().netns();
    const nl = bed().netlink();
    const host = bed().linkName('h');
    const peer = uniqueName('c');
    nl.links.add({ kind: 'veth', name: host, mtu: 1450, mac: '02:11:22:33:44:55', up: true, peer: { name: peer, netns: ns, mtu: 1450, mac: '02:11:22:33:44:66' } });

    const h = ipLink(host);
    assert.equal(h.linkinfo?.info_kind, 'veth');
    assert.equal(h.mtu, 1450);
    assert.equal(h.address, '02:11:22:33:44:55');
    assert.ok(h.flags.includes('UP'));
    assert.ok(!linkNames().includes(peer), 'peer must not appear in the host namespace');
    const c = ipLink(peer, nsName);
    assert.equal(c.linkinfo?.info_kind, 'veth');
    assert.equal(c.address, '02:11:22:33:44:66');
    assert.equal(c.mtu, 1450);

    // strand's own view agrees with iproute2's
    const mine = nl.links.get(host);
    assert.equal(mine.index, h.ifindex);
    assert.equal(mine.kind, 'veth');
    assert.equal(mine.up, true);
    assert.equal(mine.mac, '02:11:22:33:44:55');
    assert.equal(typeof mine.parentNetnsId, 'number');
    assert.deepEqual(bed().netlink(ns).links.list().map((l) => l.name).sort(), ['lo', peer].sort());
  });

  it('lists links with the same indexes and names as ip', () => {
    const nl = bed().netlink();
    const br = bed().linkName('b');
    nl.links.add({ kind: 'bridge', name: br });
    const mine = new Map(nl.links.list().map((l) => [l.name, l.index]));
    for (const l of ipJson<IpLink>(['link', 'show'])) assert.equal(mine.get(l.ifname), l.ifindex, l.ifname);
  });

  it('sets up/down, MTU, MAC, master, name and group', () => {
    const nl = bed().netlink();
    const br = bed().linkName('b');
    const a = bed().linkName('a');
    const renamed = bed().linkName('r');
    nl.links.add({ kind: 'bridge', name: br, up: true });
    nl.links.add({ kind: 'veth', name: a, peer: { name: uniqueName('p') } });

    nl.links.set(a, { up: true, mtu: 1300, mac: '02:aa:bb:cc:dd:ee', master: br, group: 7 });
    let l = ipLink(a);
    assert.ok(l.flags.includes('UP'));
    assert.equal(l.mtu, 1300);
    assert.equal(l.address, '02:aa:bb:cc:dd:ee');
    assert.equal(l.master, br);
    assert.equal(l.linkinfo?.info_slave_kind, 'bridge');
    assert.equal(nl.links.get(a).master, nl.links.get(br).index);
    assert.equal(nl.links.get(a).slaveKind, 'bridge');
    assert.equal(nl.links.get(a).group, 7);

    nl.links.set(a, { up: false, master: null });
    l = ipLink(a);
    assert.ok(!l.flags.includes('UP'));
    assert.equal(l.master, undefined);

    nl.links.set(a, { name: renamed });
    assert.ok(linkNames().includes(renamed));
    assert.ok(!linkNames().includes(a));
  });

  it('moves a link into another namespace', () => {
    const { name: nsName, ns } = bed().netns();
    const nl = bed().netlink();
    const a = bed().linkName('a');
    nl.links.add({ kind: 'veth', name: a, peer: { name: uniqueName('p') } });
    nl.links.set(a, { netns: ns });
    assert.ok(!linkNames().includes(a));
    assert.ok(linkNames(nsName).includes(a));
    assert.ok(bed().netlink(ns).links.find(a));
  });

  it('creates a bridge', () => {
    const nl = bed().netlink();
    const br = bed().linkName('b');
    nl.links.add({ kind: 'bridge', name: br, mtu: 9000, up: true });
    const l = ipLink(br);
    assert.equal(l.linkinfo?.info_kind, 'bridge');
    assert.equal(l.mtu, 9000);
    assert.ok(l.flags.includes('UP'));
  });

  it('creates a vxlan device with VNI, local address, underlay, port and learning off', () => {
    const { name: nsName, ns } = bed().netns();
    const nl = bed().netlink(ns);
    const under = 'u0';
    nl.links.add({ kind: 'veth', name: under, peer: { name: 'u1' } });
    nl.addresses.add(under, '192.0.2.10/24');
    nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 4242, local: '192.0.2.10', underlay: under, port: 4789, learning: false });
    const l = ipLink('vx0', nsName);
    const data = l.linkinfo?.info_data as { id: number; local: string; link: string; port: number; learning: boolean };
    assert.equal(l.linkinfo?.info_kind, 'vxlan');
    assert.equal(data.id, 4242);
    assert.equal(data.local, '192.0.2.10');
    assert.equal(data.link, under);
    assert.equal(data.port, 4789);
    assert.equal(data.learning, false);
    const mine = nl.links.get('vx0').vxlan!;
    assert.deepEqual([mine.vni, mine.local, mine.port, mine.learning, mine.underlay], [4242, '192.0.2.10', 4789, false, nl.links.get(under).index]);
  });

  for (const mode of ['bridge', 'private', 'vepa', 'passthru'] as const) {
    it(`creates a macvlan in ${mode} mode on a parent`, () => {
      const { name: nsName, ns } = bed().netns();
      const nl = bed().netlink(ns);
      nl.links.add({ kind: 'veth', name: 'parent0', peer: { name: 'parent1' } });
      nl.links.add({ kind: 'macvlan', name: 'mv0', parent: 'parent0', mode });
      const l = ipLink('mv0', nsName);
      assert.equal(l.linkinfo?.info_kind, 'macvlan');
      assert.equal((l.linkinfo?.info_data as { mode: string }).mode, mode);
      assert.equal(nl.links.get('mv0').macvlan?.mode, mode);
      assert.equal(nl.links.get('mv0').parentIndex, nl.links.get('parent0').index);
    });
  }

  it('deletes links, and many at once in one group delete', () => {
    const { name: nsName, ns } = bed().netns();
    const nl = bed().netlink();
    const names = Array.from({ length: 12 }, (_, i) => bed().linkName(`d${i}`));
    for (const n of names) nl.links.add({ kind: 'veth', name: n, peer: { name: `${n}p`.slice(0, 15), netns: ns } });
    nl.links.delete(names[0]!);
    assert.ok(!linkNames().includes(names[0]!));
    nl.links.deleteMany([...names.slice(1), uniqueName('gone')], { missingOk: true });
    const left = linkNames();
    for (const n of names) assert.ok(!left.includes(n), `${n} still exists`);
    assert.deepEqual(linkNames(nsName), ['lo'], 'peers go with their veths');
    // other links keep their group
    assert.ok(ipJson<IpLink>(['link', 'show']).every((l) => l.group === 'default' || l.group === undefined || !/^0x4/.test(String(l.group))));
  });

  it('deleting a link that is gone is an error, or success with missingOk', () => {
    const nl = bed().netlink();
    const gone = uniqueName('g');
    assert.throws(() => nl.links.delete(gone), (err: StrandError) => err.code === 'not-found' && err.message.includes(`"${gone}"`) && err.message.startsWith('ENODEV'));
    nl.links.delete(gone, { missingOk: true });
    assert.equal(nl.links.find(gone), undefined);
  });

  it('a link made with ip is seen by strand', () => {
    const nl = bed().netlink();
    const br = bed().linkName('i');
    ip(['link', 'add', br, 'type', 'bridge']);
    assert.equal(nl.links.get(br).kind, 'bridge');
  });
});

describe('netlink bridge ports', () => {
  const bed = useTestBed();

  it('sets hairpin, learning and isolation on a bridge port', () => {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'bridge', name: 'br0', up: true });
    nl.links.add({ kind: 'veth', name: 'p0', master: 'br0', peer: { name: 'p1' } });
    nl.links.setBridgePort('p0', { hairpin: true, learning: false, isolated: true });
    let port = ipLink('p0', name).linkinfo?.info_slave_data as { hairpin: boolean; learning: boolean; isolated: boolean };
    assert.deepEqual([port.hairpin, port.learning, port.isolated], [true, false, true]);
    nl.links.setBridgePort('p0', { hairpin: false, isolated: false });
    port = ipLink('p0', name).linkinfo?.info_slave_data as typeof port;
    assert.deepEqual([port.hairpin, port.learning, port.isolated], [false, false, false]);
  });

  it('refuses bridge-port options on a link that is no bridge port', () => {
    const { ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'veth', name: 'p0', peer: { name: 'p1' } });
    assert.throws(() => nl.links.setBridgePort('p0', { hairpin: true }), (e: StrandError) => e.message.includes('link "p0"'));
  });
});
