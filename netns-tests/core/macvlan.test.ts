// The macvlan driver through the strand command: sandboxes become peers on
// the underlay (here the host's link to the outside namespace), no NAT.
import assert from 'node:assert/strict';
import { useTestBed, ipJson } from '../../test/support/harness.js';
import { answer, ask, serve } from '../../test/support/traffic.js';
import { OUTSIDE } from '../../test/support/topology.js';
import { StrandHost } from './strand-host.js';

describe('strand macvlan networks', function () {
  this.timeout(120000);
  const bed = useTestBed();

  function underlayNet(h: StrandHost, name: string, mode: string): void {
    h.strand(['network', 'create', '--driver', 'macvlan', '--opt', 'parent=out0', '--opt', `macvlan_mode=${mode}`, '--subnet', '203.0.113.0/24', '--gateway', OUTSIDE, '--ip-range', '203.0.113.128/25', name]);
  }

  it('puts sandboxes straight on the underlay in bridge mode: the outside sees their own addresses', async () => {
    const h = new StrandHost(bed());
    await serve(bed(), h.world.outside.name, 'tcp', 8000, 'out');
    underlayNet(h, 'lan', 'bridge');
    h.serverSandbox('a', 'lan', [7000]);
    h.serverSandbox('b', 'lan', [7000]);
    const [ipA, ipB] = [h.ipOf('a'), h.ipOf('b')];
    assert.equal(ipA, '203.0.113.128');
    const link = ipJson<{ ifname: string; linkinfo: { info_kind: string; info_data: { mode: string } } }>(['-d', 'link', 'show', 'dev', 'eth0'], h.netnsOf('a'))[0]!;
    assert.equal(link.linkinfo.info_kind, 'macvlan');
    assert.equal(link.linkinfo.info_data.mode, 'bridge');
    assert.equal(await answer(() => ask(h.netnsOf('a'), 'tcp', OUTSIDE, 8000)), `out ${ipA}`, 'no NAT on a macvlan network');
    assert.equal(await answer(() => ask(h.world.outside.name, 'tcp', ipB, 7000)), `b ${OUTSIDE}`, 'reachable from the underlay at its own address');
    assert.equal(await answer(() => ask(h.netnsOf('a'), 'tcp', ipB, 7000)), `b ${ipA}`, 'bridge mode: siblings talk');
    const refused = h.strand(['run', '--network', 'lan', '-p', '8080:80', '--', 'true'], { allowFail: true });
    assert.match(refused.stderr, /macvlan network: .*ports cannot be published/);
    h.strand(['network', 'disconnect', 'lan', 'b']);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], h.netnsOf('b')).map((l) => l.ifname), ['lo'], 'disconnect removes the macvlan from the sandbox');
  });

  it('keeps siblings apart in private mode', async () => {
    const h = new StrandHost(bed());
    await serve(bed(), h.world.outside.name, 'tcp', 8000, 'out');
    underlayNet(h, 'lan', 'private');
    h.serverSandbox('a', 'lan', [7000]);
    h.serverSandbox('b', 'lan', [7000]);
    assert.ok(await answer(() => ask(h.netnsOf('a'), 'tcp', OUTSIDE, 8000)));
    assert.equal(await ask(h.netnsOf('a'), 'tcp', h.ipOf('b'), 7000, 1000), null);
  });

  it('refuses bad macvlan options clearly', () => {
    const h = new StrandHost(bed());
    const cases: [string[], RegExp][] = [
      [[], /needs --opt parent=INTERFACE/],
      [['--opt', 'parent=nosuch0'], /parent interface "nosuch0" does not exist/],
      [['--opt', 'parent=out0.10'], /no 802\.1q \(VLAN\) support/],
      [['--opt', 'parent=out0', '--opt', 'macvlan_mode=sideways'], /invalid macvlan_mode "sideways"/],
      [['--opt', 'parent=out0', '--opt', 'mtu=9000'], /MTU must be 68 to 1500/],
      [['--opt', 'parent=out0', '--opt', 'colour=red'], /unknown option "colour"/],
      [['--opt', 'parent=out0', '--internal'], /cannot be internal/],
    ];
    for (const [opts, why] of cases) {
      const r = h.strand(['network', 'create', '--driver', 'macvlan', ...opts, '--subnet', '198.51.100.0/24', 'bad'], { allowFail: true });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, why);
    }
    assert.deepEqual(JSON.parse(h.strand(['network', 'ls', '--format', 'json']).stdout), []);
  });
});
