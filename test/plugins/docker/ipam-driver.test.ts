// strand-ipam as Docker's IpamDriver, fed the bodies dockerd really sent
// (pool ids and address spaces rewritten to strand's).
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { ipamDriverHandlers } from '../../../plugins/docker/ipam-driver.js';
import { body } from './captures.js';
import { post, removeDir, rig, serve, type Rig, caller } from './fixtures.js';

describe('docker IpamDriver (strand-ipam)', () => {
  let r: Rig;
  let server: Server;
  let socket: string;

  beforeEach(async () => {
    r = await rig();
    ({ socket, server } = await serve(r.dir, 'strand-ipam', ipamDriverHandlers(r.ctl.ipamService())));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((res) => server.close(res));
    await r.close();
    removeDir(r.dir);
  });

  const { ok, fails } = caller(() => socket, 'IpamDriver');

  /** A captured RequestPool body in strand's local space. */
  function poolBody(where: (b: Record<string, unknown>) => boolean): Record<string, unknown> {
    return { ...body('IpamDriver.RequestPool', where), AddressSpace: 'strand-local' };
  }

  it('activates as an IpamDriver and reports its capabilities and spaces (empty bodies)', async () => {
    assert.deepEqual((await post(socket, '/Plugin.Activate', null)).json, { Implements: ['IpamDriver'] });
    assert.deepEqual(await ok('GetCapabilities', null), { RequiresMACAddress: false, RequiresRequestReplay: false });
    assert.deepEqual(await ok('GetDefaultAddressSpaces', null), { LocalDefaultAddressSpace: 'strand-local', GlobalDefaultAddressSpace: 'strand-global' });
  });

  it('replays a network create (subnet, --ip-range, --gateway, --aux-address), a container with and without --ip, and network rm', async () => {
    const rp = poolBody((b) => b.SubPool === '10.77.5.0/24');
    const pool = await ok('RequestPool', rp);
    assert.equal(pool.Pool, '10.77.0.0/16');
    const poolId = String(pool.PoolID);
    const stored = await r.ctl.ipamService().getPool(poolId);
    assert.equal(stored.ipRange, '10.77.5.0/24');
    assert.deepEqual(stored.options, { ipamk: 'ipamv' });

    const gw = body('IpamDriver.RequestAddress', (b) => (b.Options as Record<string, string> | null)?.RequestAddressType === 'com.docker.network.gateway' && b.Address === '10.77.0.254');
    assert.deepEqual(await ok('RequestAddress', { ...gw, PoolID: poolId }), { Address: '10.77.0.254/16', Data: {} });
    const aux = body('IpamDriver.RequestAddress', (b) => b.Address === '10.77.0.10');
    assert.equal(aux.Options, null);
    assert.equal((await ok('RequestAddress', { ...aux, PoolID: poolId })).Address, '10.77.0.10/16');

    // Next free: inside the --ip-range, which dockerd leaves to the IPAM to honour.
    const next = await ok('RequestAddress', { PoolID: poolId, Address: '', Options: null });
    assert.match(String(next.Address), /^10\.77\.5\.\d+\/16$/);
    const withMac = await ok('RequestAddress', { PoolID: poolId, Address: '', Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:4d:05:09' } });
    assert.match(String(withMac.Address), /^10\.77\.5\.\d+\/16$/);
    assert.notEqual(withMac.Address, next.Address);
    // docker run --ip: a given address, even outside the range.
    const fixed = body('IpamDriver.RequestAddress', (b) => b.Address === '10.77.5.7');
    assert.equal((await ok('RequestAddress', { ...fixed, PoolID: poolId })).Address, '10.77.5.7/16');
    assert.equal((await ok('RequestAddress', { PoolID: poolId, Address: '10.77.9.9', Options: null })).Address, '10.77.9.9/16');
    await fails('RequestAddress', { ...fixed, PoolID: poolId }, /10\.77\.5\.7 .*already allocated/);
    await fails('RequestAddress', { PoolID: poolId, Address: '10.78.0.1', Options: null }, /outside pool/);

    // network rm: the addresses, then the pool; each twice.
    for (const a of ['10.77.5.7', String(next.Address).split('/')[0], '10.77.9.9', '10.77.0.10', '10.77.0.254']) {
      await ok('ReleaseAddress', { PoolID: poolId, Address: a });
      await ok('ReleaseAddress', { PoolID: poolId, Address: a });
    }
    // One address was never released (the engine dropped it): ReleasePool collects it.
    assert.equal((await r.ctl.ipamService().listAllocations(poolId)).length, 1);
    await ok('ReleasePool', { PoolID: poolId });
    await ok('ReleasePool', { PoolID: poolId });
    await assert.rejects(r.ctl.ipamService().getPool(poolId), /unknown pool/);
    // The subnet is free again.
    assert.equal((await ok('RequestPool', rp)).Pool, '10.77.0.0/16');
  });

  it('refuses a subnet overlapping another Docker pool or a strand network, naming it', async () => {
    await ok('RequestPool', poolBody((b) => b.Pool === '10.77.0.0/16'));
    await fails('RequestPool', { AddressSpace: 'strand-local', Pool: '10.77.3.0/24', SubPool: '', Options: {}, V6: false }, /overlaps pool .*10\.77\.0\.0\/16/);
    await r.ctl.createNetwork({ name: 'mine', subnets: [{ subnet: '10.99.0.0/24' }] });
    await fails('RequestPool', { AddressSpace: 'strand-local', Pool: '10.99.0.0/16', SubPool: '', Options: {}, V6: false }, /overlaps pool/);
  });

  it('refuses pool options strand keeps for CNI pools, so a Docker pool cannot pass for one (issue 13)', async () => {
    for (const Options of [{ 'cni.network': 'cninet' }, { 'cni.range': '10.88.0.0/16' }, { 'cni.network': 'cninet', 'cni.range': '10.88.0.0/16' }, { 'strand.docker.default-pool': 'true' }, { ok: '1', 'strand.x': 'y' }]) {
      const key = Object.keys(Options).find((k) => k.startsWith('cni.') || k.startsWith('strand.'))!;
      await fails('RequestPool', { AddressSpace: 'strand-local', Pool: '10.88.0.0/16', SubPool: '', Options, V6: false }, new RegExp(`IPAM option "${key.replace(/\./g, '\\.')}" is reserved: .*remove --ipam-opt ${key.replace(/\./g, '\\.')}`));
    }
    assert.deepEqual(await r.ctl.ipamService().listPools('local'), []);
    // Other keys, Docker's included, are kept.
    const pool = await ok('RequestPool', { AddressSpace: 'strand-local', Pool: '10.88.0.0/16', SubPool: '', Options: { 'com.docker.x': '1', cninetwork: 'x' }, V6: false });
    assert.deepEqual((await r.ctl.ipamService().getPool(String(pool.PoolID))).options, { 'com.docker.x': '1', cninetwork: 'x' });
  });

  it('gives a different default pool each time an empty Pool is asked again', async () => {
    const empty = poolBody((b) => b.Pool === '');
    const a = await ok('RequestPool', empty);
    const b = await ok('RequestPool', empty);
    assert.notEqual(a.Pool, b.Pool);
    await ok('ReleasePool', { PoolID: a.PoolID });
    await ok('ReleasePool', { PoolID: b.PoolID });
  });

  it('takes an IPv6 subnet and refuses IPv6 without one, or an unknown address space', async () => {
    const v6 = await ok('RequestPool', { AddressSpace: 'strand-local', Pool: 'fd00:78::/64', SubPool: '', Options: {}, V6: true });
    assert.equal(v6.Pool, 'fd00:78::/64');
    const gw = await ok('RequestAddress', { PoolID: v6.PoolID, Address: 'fd00:78::fe', Options: { RequestAddressType: 'com.docker.network.gateway' } });
    assert.equal(gw.Address, 'fd00:78::fe/64');
    await fails('RequestPool', { AddressSpace: 'strand-local', Pool: '', SubPool: '', Options: {}, V6: true }, /no default IPv6 pool/);
    await fails('RequestPool', { AddressSpace: 'rs-local', Pool: '10.1.0.0/24', SubPool: '', Options: {}, V6: false }, /unknown address space "rs-local"/);
    await fails('RequestAddress', { PoolID: 'rs-local/10.77.0.0/16', Address: '', Options: null }, /unknown pool/);
  });
});
