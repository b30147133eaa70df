// strand's NetworkDriver handlers fed the bodies dockerd really sent, over the
// real transport, against core with a recording fake bridge driver.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { driverOptions, networkDriverHandlers } from '../../../plugins/docker/network-driver.js';
import { body } from './captures.js';
import { post, removeDir, rig, serve, type Rig, caller } from './fixtures.js';

const NET = 'b280329427b61e8ff639b1635ded9dc710dd6ac2dda2f6684d06763008ba8940';
const EP = '245d91ca97a228ea0622312ab3df43cef5b3e3988ae1b5384962d9fb58dcd6ae';
const EP2 = '9acf4f857f575068c86a76c2e4ad2d290037a54d31c12dc1e5d2331363e844be';

describe('docker NetworkDriver (strand-bridge)', () => {
  let r: Rig;
  let server: Server | undefined;
  let socket: string;

  async function start(dir?: string): Promise<void> {
    r = await rig(dir);
    ({ socket, server } = await serve(r.dir, 'strand-bridge', networkDriverHandlers(r.ctl, 'bridge')));
  }
  async function stop(): Promise<void> {
    if (!server) return;
    server.closeAllConnections();
    await new Promise((res) => server!.close(res));
    server = undefined;
    await r.close();
  }
  beforeEach(() => start());
  afterEach(async () => {
    const dir = r.dir;
    await stop();
    removeDir(dir);
  });

  const { ok, fails } = caller(() => socket, 'NetworkDriver');

  /** The captured --opt foo=bar mtu=1400 network, without the unknown key. */
  function createBody(): Record<string, unknown> {
    const b = body('NetworkDriver.CreateNetwork', (x) => x.NetworkID === NET);
    delete ((b.Options as Record<string, unknown>)['com.docker.network.generic'] as Record<string, string>).foo;
    return b;
  }

  it('activates and reports local scope', async () => {
    assert.deepEqual((await post(socket, '/Plugin.Activate', null)).json, { Implements: ['NetworkDriver'] });
    assert.deepEqual(await ok('GetCapabilities', null), { Scope: 'local', ConnectivityScope: 'local' });
  });

  it('refuses an --opt key of Object.prototype as an unknown option, not dropping it (issue 13)', async () => {
    for (const key of ['__proto__', 'constructor', 'toString']) {
      const b = createBody();
      // Parsed from JSON text, as dockerd's body is: __proto__ is an own key there.
      (b.Options as Record<string, unknown>)['com.docker.network.generic'] = JSON.parse(`{"${key}":"x"}`);
      await fails('CreateNetwork', b, new RegExp(`unknown option "${key}" for the bridge driver`));
    }
    assert.deepEqual(await r.ctl.listNetworks(), []);
    assert.deepEqual(driverOptions('macvlan', JSON.parse('{"constructor":"1","__proto__":"2","com.docker.network.driver.mtu":"1400"}')), JSON.parse('{"constructor":"1","__proto__":"2","mtu":"1400"}'));
    assert.deepEqual(driverOptions('toString', { a: '1' }), { a: '1' });
  });

  it('refuses an unknown --opt key clearly and keeps nothing', async () => {
    await fails('CreateNetwork', body('NetworkDriver.CreateNetwork', (x) => x.NetworkID === NET), /unknown option "foo" for the bridge driver/);
    assert.equal(await r.records.networks.getNetwork(NET), undefined);
    assert.deepEqual(r.driver.calls, []);
    const bad = createBody();
    ((bad.Options as Record<string, unknown>)['com.docker.network.generic'] as Record<string, string>)['com.docker.network.driver.mtu'] = 'huge';
    await fails('CreateNetwork', bad, /invalid MTU "huge"/);
    await fails('CreateNetwork', body('NetworkDriver.CreateNetwork', (x) => (x.IPv4Data as { AddressSpace: string }[])[0]?.AddressSpace === 'null'), /--ipam-driver strand-ipam/);
    assert.deepEqual(await r.ctl.listNetworks(), []);
  });

  it('creates the network from the engine pools: plain gateway and aux addresses, MTU option, external pools', async () => {
    assert.deepEqual(await ok('CreateNetwork', createBody()), {});
    const net = (await r.records.networks.getNetwork(NET))!;
    assert.equal(net.driver, 'bridge');
    assert.equal(net.externalPools, true);
    assert.equal(net.driverState.mtu, '1400');
    assert.deepEqual(net.subnets, [{ subnet: '10.77.0.0/16', gateway: '10.77.0.254', auxAddresses: { host1: '10.77.0.10' }, poolId: '', family: 4 }]);
    // Repeated: answered as done, nothing made twice.
    assert.deepEqual(await ok('CreateNetwork', createBody()), {});
    assert.equal(r.driver.calls.filter((c) => c.startsWith('createNetwork')).length, 1);
  });

  it('runs an endpoint through its life: create (MAC kept or filled in), join, ports, info, leave, delete; deletes are idempotent', async () => {
    await ok('CreateNetwork', createBody());
    const ce = body('NetworkDriver.CreateEndpoint', (x) => x.EndpointID === EP);
    assert.equal((ce.Interface as Record<string, string>).MacAddress, '02:42:04:43:66:a3');
    assert.deepEqual(await ok('CreateEndpoint', ce), {}, 'the engine chose the MAC: nothing to fill in');
    assert.ok(r.driver.calls.includes(`createEndpoint ${EP.slice(0, 12)} mtu=1400 mac=02:42:04:43:66:a3`));

    const join = await ok('Join', body('NetworkDriver.Join', (x) => x.EndpointID === EP));
    assert.deepEqual(join, { InterfaceName: { SrcName: `st${EP.slice(0, 12)}`, DstPrefix: 'eth' }, Gateway: '10.77.0.254', StaticRoutes: [], DisableGatewayService: false });

    // The second captured endpoint, moved onto this network, without a MAC.
    const ce2: Record<string, unknown> = { ...body('NetworkDriver.CreateEndpoint', (x) => x.EndpointID === EP2), NetworkID: NET };
    (ce2.Interface as Record<string, string>).MacAddress = '';
    (ce2.Interface as Record<string, string>).Address = '10.77.0.1/16';
    assert.deepEqual(await ok('CreateEndpoint', ce2), { Interface: { MacAddress: '02:42:0a:4d:00:01' } });

    const pec = { ...body('NetworkDriver.ProgramExternalConnectivity', (x) => x.EndpointID === EP2), NetworkID: NET };
    await ok('ProgramExternalConnectivity', pec);
    assert.deepEqual(r.driver.published.get(EP2), ['*:18082->80/tcp']);
    // The same host port for another endpoint is refused, naming the holder.
    await fails('ProgramExternalConnectivity', { ...pec, EndpointID: EP }, /host port 18082\/tcp is already published by endpoint 9acf4f857f57/);
    assert.equal(r.driver.published.get(EP), undefined);
    // HostPort 0 (-P): a port is picked.
    await ok('ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: { 'com.docker.network.portmap': [{ Proto: 17, IP: '', Port: 81, HostIP: '127.0.0.1', HostPort: 0, HostPortEnd: 0 }], 'com.docker.network.endpoint.exposedports': [{ Proto: 17, Port: 81 }] } });
    assert.match(r.driver.published.get(EP)![0]!, /^127\.0\.0\.1:\d+->81\/udp$/);

    const info = await ok('EndpointOperInfo', { NetworkID: NET, EndpointID: EP2 });
    assert.deepEqual((info.Value as Record<string, unknown>).addresses, ['10.77.0.1/16']);

    await ok('RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP2 });
    assert.equal(r.driver.published.get(EP2), undefined);
    assert.deepEqual(await r.records.endpoints.claimedPorts('tcp'), new Set());
    await ok('RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP2 });
    for (const id of [EP, EP2]) {
      await ok('Leave', { NetworkID: NET, EndpointID: id });
      await ok('DeleteEndpoint', { NetworkID: NET, EndpointID: id });
      await ok('DeleteEndpoint', { NetworkID: NET, EndpointID: id });
      await ok('Leave', { NetworkID: NET, EndpointID: id });
    }
    assert.deepEqual([...r.driver.links], []);
    assert.deepEqual(await r.records.endpoints.claimedPorts('udp'), new Set());
    await ok('DeleteNetwork', { NetworkID: NET });
    await ok('DeleteNetwork', { NetworkID: NET });
    assert.equal(await r.records.networks.getNetwork(NET), undefined);
  });

  it('gives no gateway on an internal network (so no docker_gwbridge either) and passes IPv6', async () => {
    const b = body('NetworkDriver.CreateNetwork', (x) => (x.Options as Record<string, unknown>)['com.docker.network.internal'] === true);
    await ok('CreateNetwork', b);
    const net = (await r.records.networks.getNetwork(String(b.NetworkID)))!;
    assert.equal(net.internal, true);
    assert.equal(net.ipv6, true);
    assert.deepEqual(net.subnets.map((s) => [s.subnet, s.gateway]), [['10.231.0.0/24', '10.231.0.1'], ['fd00:abc1::/64', 'fd00:abc1::1']]);
    const ce = body('NetworkDriver.CreateEndpoint', (x) => x.NetworkID === b.NetworkID);
    await ok('CreateEndpoint', ce);
    const join = await ok('Join', { NetworkID: b.NetworkID, EndpointID: ce.EndpointID, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    assert.equal(join.Gateway, undefined);
    assert.equal(join.GatewayIPv6, undefined);
  });

  it('answers for networks and endpoints after a restart (dockerd never replays CreateNetwork)', async () => {
    await ok('CreateNetwork', createBody());
    await ok('CreateEndpoint', body('NetworkDriver.CreateEndpoint', (x) => x.EndpointID === EP));
    const dir = r.dir;
    await stop();
    await start(dir);
    const join = await ok('Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    assert.equal(join.Gateway, '10.77.0.254');
    // A network removed with an endpoint dockerd dropped while strand was away: both go.
    await ok('DeleteNetwork', { NetworkID: NET });
    assert.equal(await r.records.endpoints.getEndpoint(EP), undefined);
    assert.ok(r.driver.calls.includes(`deleteEndpoint ${EP.slice(0, 12)}`));
  });

  it('refuses an endpoint on an unknown network or with an address outside it, and a subnet overlapping a strand network', async () => {
    await fails('CreateEndpoint', body('NetworkDriver.CreateEndpoint', (x) => x.EndpointID === EP), /unknown to strand/);
    await ok('CreateNetwork', createBody());
    const ce = body('NetworkDriver.CreateEndpoint', (x) => x.EndpointID === EP);
    (ce.Interface as Record<string, string>).Address = '10.78.0.5/16';
    await fails('CreateEndpoint', ce, /not in a subnet/);
    assert.deepEqual(await r.records.endpoints.listEndpoints(), []);
    // Docker's default IPAM chose 172.20.0.0/16: strand's own networks keep off it, and it off theirs.
    await ok('CreateNetwork', body('NetworkDriver.CreateNetwork', (x) => (x.IPv4Data as { AddressSpace: string }[])[0]?.AddressSpace === 'LocalDefault'));
    await assert.rejects(r.ctl.createNetwork({ name: 'mine', subnets: [{ subnet: '172.20.5.0/24' }] }), /overlaps subnet 172\.20\.0\.0\/16/);
    await r.ctl.createNetwork({ name: 'mine', subnets: [{ subnet: '10.90.0.0/24' }] });
    const clash = { ...createBody(), NetworkID: 'c'.repeat(64), IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.90.0.0/16', Gateway: '10.90.0.1/16' }] };
    await fails('CreateNetwork', clash, /overlaps subnet 10\.90\.0\.0\/24 of network "mine"/);
  });

  it('refuses malformed requests, naming the field', async () => {
    await fails('CreateNetwork', { NetworkID: 'short', Options: {}, IPv4Data: [] }, /NetworkID "short" is not a 64-hex-digit id/);
    await fails('CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: 5 } }, /Address must be a string/);
    await fails('ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: { 'com.docker.network.portmap': [{ Proto: 132, Port: 80, HostPort: 80 }] } }, /sctp/);
  });
});
