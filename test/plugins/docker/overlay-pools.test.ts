// strand-ipam under strand-overlay: two hosts' engines each get a pool in
// their own local space (dockerd asks before strand sees the driver); once
// linked to the cluster's global pool, their endpoint addresses come from
// that one pool, while the gateway dockerd took stays local.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../../store/index.js';
import type { Store } from '../../../store/types.js';
import { Ipam } from '../../../ipam/index.js';
import { DEFAULT_POOL_OPTION, ipamDriverHandlers } from '../../../plugins/docker/ipam-driver.js';
import { OverlayLinks } from '../../../plugins/docker/overlay-links.js';
import type { Handlers } from '../../../plugins/docker/http.js';
import { removeDir } from './fixtures.js';

const GATEWAY = { RequestAddressType: 'com.docker.network.gateway' };

interface Host {
  ipam: Ipam;
  links: OverlayLinks;
  call(method: string, body: unknown): Promise<Record<string, unknown>>;
}

describe('docker IpamDriver pools of strand-overlay networks', () => {
  let dir: string;
  let store: Store;
  let a: Host;
  let b: Host;

  function host(id: string): Host {
    const ipam = new Ipam({ store, hostId: id });
    const links = new OverlayLinks(store, id);
    const handlers: Handlers = ipamDriverHandlers(ipam, links);
    return { ipam, links, call: async (method, body) => (await handlers[`IpamDriver.${method}`]!(body)) as Record<string, unknown> };
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strand-docker-ovl-'));
    store = await openStore(`local://${join(dir, 'store')}`);
    a = host('host-a');
    b = host('host-b');
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('hands out endpoint addresses from the linked global pool, never twice across hosts, and releases only its own', async () => {
    const cluster = await a.ipam.requestPool({ space: 'global', subnet: '10.50.0.0/24', gateway: '10.50.0.1' });
    const local: Record<string, string> = {};
    for (const [name, h] of [['a', a], ['b', b]] as const) {
      // The same subnet in each host's local space: no overlap between hosts.
      const pool = await h.call('RequestPool', { AddressSpace: 'strand-local', Pool: '10.50.0.0/24', SubPool: '', Options: {}, V6: false });
      local[name] = String(pool.PoolID);
      assert.deepEqual(await h.call('RequestAddress', { PoolID: local[name], Address: '', Options: GATEWAY }), { Address: '10.50.0.1/24', Data: {} });
      await h.links.add({ engineNetworkId: name.repeat(64), clusterId: 'c'.repeat(64), pools: { [local[name]!]: { globalPoolId: cluster.id, local: ['10.50.0.1'] } } });
    }
    const got: string[] = [];
    for (const [name, h] of [['a', a], ['b', b], ['a', a], ['b', b]] as const) got.push(String((await h.call('RequestAddress', { PoolID: local[name], Address: '', Options: null })).Address));
    assert.equal(new Set(got).size, 4, got.join(' '));
    const inCluster = await a.ipam.listAllocations(cluster.id);
    assert.deepEqual(inCluster.map((x) => `${x.address}/24`).sort(), [...got].sort());
    assert.deepEqual(inCluster.map((x) => x.host).sort(), ['host-a', 'host-a', 'host-b', 'host-b']);

    // An endpoint's address goes back to the cluster pool; the gateway to the local one.
    await a.call('ReleaseAddress', { PoolID: local.a, Address: got[0]!.split('/')[0] });
    await a.call('ReleaseAddress', { PoolID: local.a, Address: '10.50.0.1' });
    assert.deepEqual(await a.ipam.listAllocations(local.a!), []);
    // ReleasePool takes what host a's engine left in the cluster pool, and nothing of host b's.
    await a.call('ReleasePool', { PoolID: local.a });
    assert.deepEqual((await a.ipam.listAllocations(cluster.id)).map((x) => x.host), ['host-b', 'host-b']);
    await assert.rejects(a.ipam.getPool(local.a!), /unknown pool/);
    // A restarted daemon reads the links back.
    const again = ipamDriverHandlers(b.ipam, new OverlayLinks(store, 'host-b'));
    const more = (await again['IpamDriver.RequestAddress']!({ PoolID: local.b, Address: '', Options: null })) as { Address: string };
    assert.ok((await b.ipam.listAllocations(cluster.id)).some((x) => `${x.address}/24` === more.Address));
  });

  it('takes a PoolID such as __proto__ or toString for no linked pool (issue 13)', async () => {
    await a.links.add({ engineNetworkId: 'a'.repeat(64), clusterId: 'c'.repeat(64), pools: { 'local-1': { globalPoolId: 'global-1', local: [] } } });
    for (const id of ['__proto__', 'toString', 'constructor']) {
      assert.equal(await a.links.poolAlias(id), undefined, id);
      // An unknown pool: Docker's releases are idempotent, so this succeeds (it was a TypeError on Object.prototype's "local").
      assert.deepEqual(await a.call('ReleaseAddress', { PoolID: id, Address: '10.50.0.9' }), {}, id);
    }
    assert.deepEqual(await a.links.poolAlias('local-1'), { globalPoolId: 'global-1', local: [] });
  });

  it('marks a pool it picked itself, which hosts could not agree on', async () => {
    const picked = await a.call('RequestPool', { AddressSpace: 'strand-local', Pool: '', SubPool: '', Options: {}, V6: false });
    assert.equal((await a.ipam.getPool(String(picked.PoolID))).options[DEFAULT_POOL_OPTION], 'true');
    const given = await a.call('RequestPool', { AddressSpace: 'strand-local', Pool: '10.51.0.0/24', SubPool: '', Options: {}, V6: false });
    assert.deepEqual((await a.ipam.getPool(String(given.PoolID))).options, {});
  });
});
