import assert from 'node:assert/strict';
import { useTestBed, ipJson, run } from '../../test/support/harness.js';
import { StrandError } from '../../common/errors.js';

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; broadcast?: string }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  metric?: number;
  flags?: string[];
  table?: string;
}

describe('netlink addresses and routes', () => {
  const bed = useTestBed();

  /** A namespace holding one end of a veth pair, up, named "v0" (peer "v1"). */
  function nsWithVeth() {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'veth', name: 'v0', up: true, peer: { name: 'v1' } });
    nl.links.set('v1', { up: true });
    return { name, ns, nl };
  }

  it('adds, lists and deletes IPv4 and IPv6 addresses', () => {
    const { name, nl } = nsWithVeth();
    nl.addresses.add('v0', '10.10.0.1/24');
    nl.addresses.add('v0', '10.10.1.1/16');
    nl.addresses.add('v0', 'fd00:10::1/64', { noDad: true });
    const seen = ipJson<IpAddr>(['addr', 'show', 'dev', 'v0'], name)[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
    assert.ok(seen.includes('10.10.0.1/24'));
    assert.ok(seen.includes('10.10.1.1/16'));
    assert.ok(seen.includes('fd00:10::1/64'));
    const v4 = ipJson<IpAddr>(['addr', 'show', 'dev', 'v0'], name)[0]!.addr_info.find((a) => a.local === '10.10.0.1')!;
    assert.equal(v4.broadcast, '10.10.0.255');

    const mine = nl.addresses.list({ dev: 'v0' }).map((a) => a.cidr);
    for (const c of ['10.10.0.1/24', '10.10.1.1/16', 'fd00:10::1/64']) assert.ok(mine.includes(c), c);
    assert.deepEqual(nl.addresses.list({ dev: 'v0', family: 4 }).map((a) => a.cidr).sort(), ['10.10.0.1/24', '10.10.1.1/16']);

    nl.addresses.delete('v0', '10.10.1.1/16');
    nl.addresses.delete('v0', 'fd00:10::1/64');
    const after = ipJson<IpAddr>(['addr', 'show', 'dev', 'v0'], name)[0]!.addr_info.map((a) => a.local);
    assert.ok(!after.includes('10.10.1.1'));
    assert.ok(!after.includes('fd00:10::1'));
    assert.ok(after.includes('10.10.0.1'));
  });

  it('an IPv6 address added without DAD is usable at once, not tentative', () => {
    const { name, nl } = nsWithVeth();
    nl.addresses.add('v0', 'fd00:20::1/64', { noDad: true });
    const out = run('ip', ['-n', name, '-6', 'addr', 'show', 'dev', 'v0']).stdout;
    const line = out.split('\n').find((l) => l.includes('fd00:20::1/64'));
    assert.match(line ?? '', /scope global nodad/);
    assert.doesNotMatch(line ?? '', /tentative/);
  });

  it('adding an address twice is EEXIST naming it; replace succeeds; deleting a missing one is optional', () => {
    const { nl } = nsWithVeth();
    nl.addresses.add('v0', '10.30.0.1/24');
    assert.throws(() => nl.addresses.add('v0', '10.30.0.1/24'), (e: StrandError) => e.code === 'exists' && /^EEXIST: address 10\.30\.0\.1\/24 on link "v0" already exists/.test(e.message));
    nl.addresses.add('v0', '10.30.0.1/24', { replace: true });
    nl.addresses.delete('v0', '10.30.0.1/24');
    assert.throws(() => nl.addresses.delete('v0', '10.30.0.1/24'), (e: StrandError) => e.code === 'not-found');
    nl.addresses.delete('v0', '10.30.0.1/24', { missingOk: true });
  });

  it('adds, replaces, lists and deletes IPv4 routes with gateway, device, metric, scope and table', () => {
    const { name, nl } = nsWithVeth();
    nl.addresses.add('v0', '10.40.0.2/24');
    nl.routes.add({ dst: 'default', gateway: '10.40.0.1' });
    nl.routes.add({ dst: '10.41.0.0/16', gateway: '10.40.0.1', dev: 'v0', metric: 50 });
    nl.routes.add({ dst: '10.42.0.0/24', dev: 'v0' });
    nl.routes.add({ dst: '10.43.0.0/24', gateway: '10.40.0.9', table: 1000, dev: 'v0' });

    const routes = ipJson<IpRoute>(['route', 'show'], name);
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.40.0.1' && r.dev === 'v0'));
    assert.ok(routes.some((r) => r.dst === '10.41.0.0/16' && r.gateway === '10.40.0.1' && r.metric === 50));
    assert.ok(routes.some((r) => r.dst === '10.42.0.0/24' && r.scope === 'link' && !r.gateway));
    const t1000 = ipJson<IpRoute>(['route', 'show', 'table', '1000'], name);
    assert.deepEqual(t1000.map((r) => [r.dst, r.gateway]), [['10.43.0.0/24', '10.40.0.9']]);

    const mine = nl.routes.list({ family: 4 });
    assert.ok(mine.some((r) => r.dst === 'default' && r.gateway === '10.40.0.1'));
    assert.ok(mine.some((r) => r.dst === '10.42.0.0/24' && r.scope === 'link'));
    assert.deepEqual(nl.routes.list({ table: 1000 }).map((r) => r.dst), ['10.43.0.0/24']);

    nl.routes.replace({ dst: '10.41.0.0/16', gateway: '10.40.0.5', metric: 50 });
    assert.ok(ipJson<IpRoute>(['route', 'show', '10.41.0.0/16'], name).some((r) => r.gateway === '10.40.0.5'));

    assert.throws(() => nl.routes.add({ dst: '10.42.0.0/24', dev: 'v0' }), (e: StrandError) => e.code === 'exists' && e.message.includes('route to 10.42.0.0/24'));
    nl.routes.delete({ dst: '10.42.0.0/24', dev: 'v0' });
    nl.routes.delete({ dst: 'default', gateway: '10.40.0.1' });
    const left = ipJson<IpRoute>(['route', 'show'], name).map((r) => r.dst);
    assert.ok(!left.includes('10.42.0.0/24'));
    assert.ok(!left.includes('default'));
    nl.routes.delete({ dst: '10.42.0.0/24', dev: 'v0' }, { missingOk: true });
  });

  it('adds an on-link gateway route outside every subnet, and IPv6 routes', () => {
    const { name, nl } = nsWithVeth();
    // The kernel checks an on-link gateway against the local table, which exists once lo is up.
    nl.links.set('lo', { up: true });
    nl.routes.add({ dst: 'default', gateway: '169.254.1.1', dev: 'v0', onLink: true });
    const def = ipJson<IpRoute>(['route', 'show', 'default'], name)[0]!;
    assert.equal(def.gateway, '169.254.1.1');
    assert.ok(def.flags?.includes('onlink'));
    assert.ok(nl.routes.list({ family: 4 }).some((r) => r.dst === 'default' && r.onLink));

    nl.addresses.add('v0', 'fd00:50::2/64', { noDad: true });
    nl.routes.add({ dst: 'fd00:51::/64', gateway: 'fd00:50::1' });
    nl.routes.add({ dst: 'default', gateway: 'fd00:50::1', metric: 10 });
    const v6 = ipJson<IpRoute>(['-6', 'route', 'show'], name);
    assert.ok(v6.some((r) => r.dst === 'fd00:51::/64' && r.gateway === 'fd00:50::1'));
    assert.ok(v6.some((r) => r.dst === 'default' && r.gateway === 'fd00:50::1' && r.metric === 10));
    assert.ok(nl.routes.list({ family: 6 }).some((r) => r.dst === 'fd00:51::/64'));
  });

  it('a route via an unreachable gateway is refused with the kernel reason', () => {
    const { nl } = nsWithVeth();
    assert.throws(() => nl.routes.add({ dst: '10.60.0.0/24', gateway: '10.99.99.1' }), (e: StrandError) => e.message.includes('route to 10.60.0.0/24 via 10.99.99.1') && e.code === 'invalid');
  });

  it('traffic flows between two namespaces set up through strand (ping)', () => {
    const a = bed().netns('a');
    const b = bed().netns('b');
    const nla = bed().netlink(a.ns);
    const nlb = bed().netlink(b.ns);
    nla.links.add({ kind: 'veth', name: 'e0', up: true, peer: { name: 'e0', netns: b.ns } });
    nlb.links.set('e0', { up: true });
    nla.addresses.add('e0', '10.70.0.1/24');
    nlb.addresses.add('e0', '10.70.0.2/24');
    nlb.links.set('lo', { up: true });
    nlb.addresses.add('lo', '10.71.0.2/32');
    nla.routes.add({ dst: '10.71.0.0/24', gateway: '10.70.0.2' });
    run('ip', ['netns', 'exec', a.name, 'ping', '-c', '1', '-W', '2', '10.70.0.2']);
    run('ip', ['netns', 'exec', a.name, 'ping', '-c', '1', '-W', '2', '10.71.0.2']);
  });
});
