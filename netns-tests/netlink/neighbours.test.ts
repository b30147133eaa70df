import assert from 'node:assert/strict';
import { useTestBed, ipJson, run } from '../../test/support/harness.js';

interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}
interface IpFdb {
  mac: string;
  ifname?: string;
  dst?: string;
  flags?: string[];
  master?: string;
  state?: string;
}

describe('netlink neighbours and FDB', () => {
  const bed = useTestBed();

  it('sets, lists and deletes permanent ARP and NDP entries', () => {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'veth', name: 'v0', up: true, peer: { name: 'v1' } });
    nl.neighbours.setPermanent('v0', '10.80.0.9', '02:00:00:00:80:09');
    nl.neighbours.setPermanent('v0', 'fd00:80::9', '02:00:00:00:80:99');
    nl.neighbours.setPermanent('v0', '10.80.0.9', '02:00:00:00:80:10'); // replace

    const seen = ipJson<IpNeigh>(['neigh', 'show', 'dev', 'v0'], name);
    const v4 = seen.find((n) => n.dst === '10.80.0.9')!;
    assert.equal(v4.lladdr, '02:00:00:00:80:10');
    assert.deepEqual(v4.state, ['PERMANENT']);
    assert.equal(seen.find((n) => n.dst === 'fd00:80::9')?.lladdr, '02:00:00:00:80:99');

    const mine = nl.neighbours.list({ dev: 'v0' });
    assert.ok(mine.some((n) => n.ip === '10.80.0.9' && n.mac === '02:00:00:00:80:10' && n.permanent));
    assert.ok(mine.some((n) => n.ip === 'fd00:80::9' && n.family === 6));

    nl.neighbours.delete('v0', '10.80.0.9');
    assert.ok(!ipJson<IpNeigh>(['neigh', 'show', 'dev', 'v0'], name).some((n) => n.dst === '10.80.0.9'));
    assert.throws(() => nl.neighbours.delete('v0', '10.80.0.9'), /10\.80\.0\.9/);
    nl.neighbours.delete('v0', '10.80.0.9', { missingOk: true });
  });

  it('adds and deletes static FDB entries on a bridge port', () => {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'bridge', name: 'br0', up: true });
    nl.links.add({ kind: 'veth', name: 'p0', master: 'br0', up: true, peer: { name: 'p1' } });
    nl.neighbours.addFdb({ dev: 'p0', mac: '02:00:00:00:90:01', master: true, state: 'static' });
    const fdb = JSON.parse(run('bridge', ['-j', '-n', name, 'fdb', 'show', 'dev', 'p0']).stdout) as IpFdb[];
    const mine = fdb.find((e) => e.mac === '02:00:00:00:90:01');
    assert.ok(mine, 'entry visible to bridge fdb');
    assert.equal(mine.master, 'br0');
    assert.equal(mine.state, 'static');
    assert.ok(nl.neighbours.listFdb({ dev: 'p0' }).some((e) => e.mac === '02:00:00:00:90:01' && !e.self));
    nl.neighbours.deleteFdb({ dev: 'p0', mac: '02:00:00:00:90:01', master: true });
    const after = JSON.parse(run('bridge', ['-j', '-n', name, 'fdb', 'show', 'dev', 'p0']).stdout) as IpFdb[];
    assert.ok(!after.some((e) => e.mac === '02:00:00:00:90:01'));
  });

  it('points MACs at remote VTEPs on a vxlan device, and traffic crosses with learning off', () => {
    // Two "hosts" on an underlay veth, each with a vxlan device and a bridge-less endpoint address.
    const a = bed().netns('a');
    const b = bed().netns('b');
    const nla = bed().netlink(a.ns);
    const nlb = bed().netlink(b.ns);
    nla.links.add({ kind: 'veth', name: 'ul', up: true, peer: { name: 'ul', netns: b.ns } });
    nlb.links.set('ul', { up: true });
    nla.addresses.add('ul', '192.0.2.1/24');
    nlb.addresses.add('ul', '192.0.2.2/24');
    const macA = '02:00:00:aa:00:01';
    const macB = '02:00:00:bb:00:01';
    nla.links.add({ kind: 'vxlan', name: 'vx', vni: 77, local: '192.0.2.1', underlay: 'ul', learning: false, mac: macA, mtu: 1450, up: true });
    nlb.links.add({ kind: 'vxlan', name: 'vx', vni: 77, local: '192.0.2.2', underlay: 'ul', learning: false, mac: macB, mtu: 1450, up: true });
    nla.addresses.add('vx', '10.90.0.1/24');
    nlb.addresses.add('vx', '10.90.0.2/24');
    // No flooding and no learning: each side knows the other only from these entries.
    nla.neighbours.addFdb({ dev: 'vx', mac: macB, dst: '192.0.2.2' });
    nlb.neighbours.addFdb({ dev: 'vx', mac: macA, dst: '192.0.2.1' });
    nla.neighbours.setPermanent('vx', '10.90.0.2', macB);
    nlb.neighbours.setPermanent('vx', '10.90.0.1', macA);

    const fdb = JSON.parse(run('bridge', ['-j', '-n', a.name, 'fdb', 'show', 'dev', 'vx']).stdout) as IpFdb[];
    assert.ok(fdb.some((e) => e.mac === macB && e.dst === '192.0.2.2' && e.state === 'permanent'));
    assert.ok(nla.neighbours.listFdb({ dev: 'vx' }).some((e) => e.mac === macB && e.dst === '192.0.2.2' && e.self && e.permanent));

    run('ip', ['netns', 'exec', a.name, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '10.90.0.2']);

    // Without the FDB entry the packet has nowhere to go.
    nla.neighbours.deleteFdb({ dev: 'vx', mac: macB, dst: '192.0.2.2' });
    assert.ok(!nla.neighbours.listFdb({ dev: 'vx' }).some((e) => e.mac === macB));
    const r = run('ip', ['netns', 'exec', a.name, 'ping', '-c', '1', '-W', '1', '10.90.0.2'], { allowFail: true });
    assert.notEqual(r.status, 0);
  });

  it('appends default (all-zero MAC) VTEP destinations for flooding', () => {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'veth', name: 'ul', up: true, peer: { name: 'ul1' } });
    nl.addresses.add('ul', '192.0.2.1/24');
    nl.links.add({ kind: 'vxlan', name: 'vx', vni: 5, local: '192.0.2.1', underlay: 'ul' });
    nl.neighbours.addFdb({ dev: 'vx', mac: '00:00:00:00:00:00', dst: '192.0.2.7' });
    nl.neighbours.addFdb({ dev: 'vx', mac: '00:00:00:00:00:00', dst: '192.0.2.8' });
    const dsts = nl.neighbours.listFdb({ dev: 'vx' }).filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort();
    assert.deepEqual(dsts, ['192.0.2.7', '192.0.2.8']);
    const seen = (JSON.parse(run('bridge', ['-j', '-n', name, 'fdb', 'show', 'dev', 'vx']).stdout) as IpFdb[]).filter((e) => e.mac === '00:00:00:00:00:00');
    assert.equal(seen.length, 2);
  });
});
