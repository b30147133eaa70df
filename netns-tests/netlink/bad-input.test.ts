// Bad input to the kernel layer: a typed error naming the object and the
// kernel's answer, never an unhandled exception, and nothing half-made.
import assert from 'node:assert/strict';
import { useTestBed, linkNames, uniqueName } from '../../test/support/harness.js';
import { StrandError } from '../../common/errors.js';
import { KernelError, type LinkSpec } from '../../netlink/index.js';

const fails = (code: StrandError['code'], ...parts: (string | RegExp)[]) => (e: unknown) => {
  assert.ok(e instanceof StrandError, `expected a StrandError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  for (const p of parts) typeof p === 'string' ? assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`) : assert.match(e.message, p);
  return true;
};

describe('netlink bad input', () => {
  const bed = useTestBed();

  it('refuses interface names that are too long, contain / or white space, or are empty', () => {
    const nl = bed().netlink();
    const before = linkNames();
    const cases: [string, string][] = [
      ['abcdefghijklmnop', 'at most 15'],
      ['a/b', "'/'"],
      ['a b', 'white space'],
      ['tab\there', 'white space'],
      ['', 'empty'],
      ['..', 'reserved'],
    ];
    for (const [name, why] of cases) {
      assert.throws(() => nl.links.add({ kind: 'bridge', name }), fails('invalid', `"${name}"`, why));
      assert.throws(() => nl.links.add({ kind: 'veth', name: uniqueName('ok'), peer: { name } }), fails('invalid', why));
    }
    assert.deepEqual(linkNames(), before);
  });

  it('refuses unknown link kinds, naming the kind and the choices', () => {
    const nl = bed().netlink();
    const name = uniqueName('k');
    assert.throws(() => nl.links.add({ kind: 'vlan', name } as unknown as LinkSpec), fails('invalid', '"vlan"', 'veth, bridge, vxlan, macvlan'));
    assert.throws(() => nl.links.add({ kind: 'macvlan', name, parent: 'lo', mode: 'sideways' } as unknown as LinkSpec), fails('invalid', '"sideways"'));
    assert.ok(!linkNames().includes(name));
  });

  it('refuses a missing master, parent or namespace link, naming it', () => {
    const nl = bed().netlink();
    const name = bed().linkName('m');
    const missing = uniqueName('x');
    assert.throws(() => nl.links.add({ kind: 'veth', name, master: missing, peer: { name: uniqueName('p') } }), fails('not-found', /^ENODEV: /, `"${missing}"`));
    assert.throws(() => nl.links.add({ kind: 'macvlan', name, parent: missing }), fails('not-found', `"${missing}"`));
    assert.throws(() => nl.links.set(missing, { up: true }), fails('not-found', `"${missing}"`));
    assert.throws(() => nl.addresses.add(missing, '10.0.0.1/24'), fails('not-found', `"${missing}"`));
    assert.ok(!linkNames().includes(name));
  });

  it('a duplicate name is EEXIST naming the link', () => {
    const nl = bed().netlink();
    const name = bed().linkName('d');
    nl.links.add({ kind: 'bridge', name });
    assert.throws(() => nl.links.add({ kind: 'bridge', name }), (e: unknown) => {
      assert.ok(e instanceof KernelError);
      assert.equal(e.errnoName, 'EEXIST');
      assert.equal(e.message, `EEXIST: link "${name}" already exists`);
      return true;
    });
  });

  it('a veth whose peer cannot be placed leaves no host end behind', () => {
    const { ns } = bed().netns();
    const inside = bed().netlink(ns);
    inside.links.add({ kind: 'bridge', name: 'taken0' });
    const nl = bed().netlink();
    const host = bed().linkName('h');
    assert.throws(() => nl.links.add({ kind: 'veth', name: host, peer: { name: 'taken0', netns: ns } }), fails('exists', /^EEXIST/, '"taken0"'));
    assert.ok(!linkNames().includes(host));
    assert.deepEqual(inside.links.list().map((l) => l.name).sort(), ['lo', 'taken0']);
  });

  it('refuses bad MTUs, MACs, VNIs, ports and addresses before asking the kernel', () => {
    const { ns } = bed().netns();
    const nl = bed().netlink(ns);
    assert.throws(() => nl.links.add({ kind: 'bridge', name: 'b0', mtu: 20 }), fails('invalid', 'MTU 20'));
    assert.throws(() => nl.links.add({ kind: 'bridge', name: 'b0', mac: '02:00:zz:00:00:01' }), fails('invalid', '02:00:zz:00:00:01'));
    assert.throws(() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 1 << 24 }), fails('invalid', 'VNI 16777216'));
    assert.throws(() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 5, port: 70000 }), fails('invalid', 'port 70000'));
    assert.throws(() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 5, local: '300.1.1.1' }), fails('invalid', '300.1.1.1'));
    assert.deepEqual(nl.links.list().map((l) => l.name), ['lo']);
    nl.links.add({ kind: 'bridge', name: 'b1' });
    assert.throws(() => nl.addresses.add('b1', '10.0.0.1'), fails('invalid', 'ADDRESS/PREFIXLEN'));
    assert.throws(() => nl.addresses.add('b1', '10.0.0.1/33'), fails('invalid', 'prefix length "33"'));
    assert.throws(() => nl.addresses.add('b1', 'fd00::zz/64'), fails('invalid', 'fd00::zz'));
    assert.throws(() => nl.routes.add({ dst: '10.1.0.0/16' }), fails('invalid', 'gateway, a device'));
    assert.throws(() => nl.routes.add({ dst: '10.1.0.0/16', gateway: 'fd00::1' }), fails('invalid', 'same IP family'));
    assert.deepEqual(nl.addresses.list({ dev: 'b1', family: 4 }), []);
  });

  it('kernel refusals carry the kernel reason', () => {
    const { ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'bridge', name: 'b0' });
    // A bridge cannot be its own port.
    assert.throws(() => nl.links.set('b0', { master: 'b0' }), (e: unknown) => e instanceof KernelError && e.message.includes('link "b0"'));
  });
});
