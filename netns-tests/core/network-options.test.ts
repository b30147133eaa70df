// Network options a Docker user expects: IPv6, icc off, MTU, a named bridge,
// an ip range, auxiliary addresses, and what inspect reports.
import assert from 'node:assert/strict';
import { useTestBed, ipJson } from '../../test/support/harness.js';
import { answer, ask, serve } from '../../test/support/traffic.js';
import { HOST_OUT, OUTSIDE } from '../../test/support/topology.js';
import { StrandHost } from './strand-host.js';


describe('strand network options', function () {
  this.timeout(120000);
  const bed = useTestBed();

  it('runs dual-stack: IPv6 addresses, default route and traffic between sandboxes', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--ipv6', '--subnet', '10.70.0.0/24', '--subnet', 'fd00:70::/64', 'n6']);
    h.serverSandbox('a', 'n6', [7000]);
    h.serverSandbox('b', 'n6', [7000]);
    const a = h.ps().find((s) => s.name === 'a')!;
    const v6 = a.addresses.find((x) => x.includes(':'));
    assert.ok(v6?.startsWith('fd00:70::'), `an IPv6 address, got ${a.addresses}`);
    const ip6 = v6!.split('/')[0]!;
    const bIp6 = h.ps().find((s) => s.name === 'b')!.addresses.find((x) => x.includes(':'))!.split('/')[0]!;
    assert.equal(await answer(() => ask(h.netnsOf('b'), 'tcp', ip6, 7000)), `a ${bIp6}`);
    const routes = ipJson<{ dst: string; gateway?: string }>(['-6', 'route', 'show'], h.netnsOf('a'));
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === 'fd00:70::1'));
    const bridge = JSON.parse(h.strand(['network', 'inspect', 'n6']).stdout)[0].Driver_State.bridge as string;
    const gw = ipJson<{ addr_info: { local: string }[] }>(['addr', 'show', 'dev', bridge], h.name)[0]!.addr_info.map((x) => x.local);
    assert.ok(gw.includes('10.70.0.1') && gw.includes('fd00:70::1'));
    const refused = h.strand(['network', 'create', '--subnet', 'fd00:71::/64', 'v6only'], { allowFail: true });
    assert.match(refused.stderr, /add --ipv6/);
  });

  it('with icc off, sandboxes on one network cannot talk, but reach the outside', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.71.0.0/24', '--opt', 'icc=false', 'quiet']);
    h.serverSandbox('a', 'quiet', [7000]);
    h.serverSandbox('b', 'quiet', [7000]);
    assert.ok(await answer(() => ask(h.netnsOf('a'), 'tcp', h.ipOf('a'), 7000)), 'a serves itself');
    assert.equal(await ask(h.netnsOf('b'), 'tcp', h.ipOf('a'), 7000, 1000), null);
    await serve(bed(), h.world.outside.name, 'tcp', 8000, 'out');
    assert.equal(await ask(h.netnsOf('b'), 'tcp', OUTSIDE, 8000), `out ${HOST_OUT}`);
  });

  it('applies --opt mtu and bridge.name, --ip-range and --aux-address; inspect reports them', () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.72.0.0/24', '--gateway', '10.72.0.254', '--ip-range', '10.72.0.128/25', '--aux-address', 'printer=10.72.0.130', '--opt', 'mtu=1400', '--opt', 'com.docker.network.bridge.name=brx72', '--label', 'team=net', 'n1']);
    h.strand(['run', '-d', '--name', 'a', '--network', 'n1', '--', 'sleep', '300']);
    const ip = h.ipOf('a');
    assert.equal(ip, '10.72.0.128', 'first address of the range (the aux address is skipped later)');
    h.strand(['run', '-d', '--name', 'b', '--network', 'n1', '--', 'sleep', '300']);
    h.strand(['run', '-d', '--name', 'c', '--network', 'n1', '--', 'sleep', '300']);
    assert.equal(h.ipOf('c'), '10.72.0.131', 'the auxiliary address is never handed out');
    const br = ipJson<{ ifname: string; mtu: number }>(['link', 'show', 'dev', 'brx72'], h.name)[0]!;
    assert.equal(br.mtu, 1400);
    assert.equal(ipJson<{ mtu: number }>(['link', 'show', 'dev', 'eth0'], h.netnsOf('a'))[0]!.mtu, 1400);
    const [net] = JSON.parse(h.strand(['network', 'inspect', 'n1']).stdout);
    assert.deepEqual(net.IPAM.Config, [{ Subnet: '10.72.0.0/24', Gateway: '10.72.0.254', IPRange: '10.72.0.128/25', AuxiliaryAddresses: { printer: '10.72.0.130' } }]);
    assert.deepEqual(net.Labels, { team: 'net' });
    assert.equal(Object.keys(net.Endpoints).length, 3);
    assert.deepEqual(Object.values(net.Endpoints as Record<string, { Sandbox: string }>).map((e) => e.Sandbox).sort(), ['a', 'b', 'c']);
  });
});
