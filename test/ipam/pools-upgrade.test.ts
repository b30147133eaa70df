// Pools are one key each. A store written by an earlier version keeps every
// pool of a space in one registry key (<space>/pools = {pools: {id: Pool}});
// these tests write that layout by hand, as the earlier version left it, and
// check that the current Ipam reads it, moves it into pool keys (in several
// transactions for a large registry, as etcd limits a transaction's size),
// and goes on allocating where the old one stopped.
import assert from 'node:assert/strict';
import { Ipam } from '../../ipam/index.js';
import type { Allocation, Pool, PoolState } from '../../ipam/types.js';
import type { Store } from '../../store/types.js';
import { BACKENDS, type TempStore, dump } from './helpers.js';

const HOST = 'h1';
const P = `ipam/local/${HOST}`;
const OLD_POOLS = 250;

function oldPool(i: number): Pool {
  return {
    id: `local-${i.toString(16).padStart(16, '0')}`,
    space: 'local',
    subnet: `10.${i}.0.0/16`,
    auxAddresses: {},
    options: { n: String(i) },
    createdBy: HOST,
    ...(i === 0 ? { gateway: '10.0.0.1' } : {}),
  };
}

/** The earlier version's layout: the registry key, a state key per pool, and one allocation (10.1.0.1 in pool 1). */
async function writeOldLayout(store: Store): Promise<Pool[]> {
  const pools = Array.from({ length: OLD_POOLS }, (_, i) => oldPool(i));
  await store.put(`${P}/pools`, JSON.stringify({ pools: Object.fromEntries(pools.map((p) => [p.id, p])) }));
  for (const p of pools) {
    const state: PoolState = p === pools[1] ? { cursor: '0a010001', allocated: 1, inRange: 1 } : { cursor: '', allocated: 0, inRange: 0 };
    await store.put(`${P}/state/${p.id}`, JSON.stringify(state));
  }
  const held: Allocation = { poolId: pools[1]!.id, address: '10.1.0.1', owner: { containerId: 'old', ifName: 'eth0' }, host: HOST };
  await store.put(`${P}/addrs/${pools[1]!.id}/0a010001`, JSON.stringify(held));
  await store.put(`${P}/owners/cold/ieth0/${pools[1]!.id}/0a010001`, '10.1.0.1');
  return pools;
}

const byId = (pools: Pool[]) => [...pools].sort((a, b) => (a.id < b.id ? -1 : 1));

for (const backend of BACKENDS) describe(`ipam pools upgrade (${backend.name})`, function () {
  this.timeout(120_000);
  let t: TempStore;

  before(() => backend.before());
  after(() => backend.after());
  beforeEach(async () => {
    t = await backend.fresh();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('reads a registry key written by the earlier version, moves it into pool keys, and carries on', async () => {
    const old = await writeOldLayout(t.store);
    const ipam = new Ipam({ store: t.store, hostId: HOST });
    assert.deepEqual(byId(await ipam.listPools('local')), byId(old));

    const keys = Object.keys(await dump(t.store));
    assert.ok(!keys.includes(`${P}/pools`), 'the registry key is gone');
    assert.equal(keys.filter((k) => k.startsWith(`${P}/pools/`)).length, OLD_POOLS);
    assert.deepEqual(await ipam.getPool(old[0]!.id), old[0]);

    // The old pools still guard their subnets, and keep their allocations and cursors.
    await assert.rejects(ipam.requestPool({ subnet: '10.7.3.0/24' }), new RegExp(`overlaps pool ${old[7]!.id}`));
    const fresh = await ipam.requestPool({ subnet: '10.250.0.0/16' });
    assert.equal((await ipam.listPools('local')).length, OLD_POOLS + 1);
    assert.equal((await ipam.requestAddress(old[1]!.id, { owner: { containerId: 'new' } })).address, '10.1.0.2');
    assert.deepEqual(await ipam.releaseByOwner({ containerId: 'old' }), [
      { poolId: old[1]!.id, address: '10.1.0.1', owner: { containerId: 'old', ifName: 'eth0' }, host: HOST },
    ]);
    assert.equal((await ipam.requestAddress(old[0]!.id, { gateway: true })).address, '10.0.0.1');
    await ipam.releasePool(old[2]!.id);
    await ipam.releasePool(fresh.id);
    assert.equal((await ipam.listPools('local')).length, OLD_POOLS - 1);
  });

  it('migrates on the first call whatever it is, once, when several Ipams start at once', async () => {
    const old = await writeOldLayout(t.store);
    const first = await new Ipam({ store: t.store, hostId: HOST }).getPool(old[42]!.id);
    assert.deepEqual(first, old[42]);
    assert.ok(!Object.keys(await dump(t.store)).includes(`${P}/pools`));

    await t.store.delete(`${P}/pool-guard`);
    for (const p of old) await t.store.delete(`${P}/pools/${p.id}`);
    await writeOldLayout(t.store);
    const many = Array.from({ length: 4 }, () => new Ipam({ store: t.store, hostId: HOST }));
    const lists = await Promise.all(many.map((i) => i.listPools('local')));
    for (const l of lists) assert.deepEqual(byId(l), byId(old));
    assert.equal(Object.keys(await dump(t.store)).filter((k) => k.startsWith(`${P}/pools`)).length, OLD_POOLS);
  });

  it('merges a registry key that an earlier version still running writes after the upgrade', async () => {
    const ipam = new Ipam({ store: t.store, hostId: HOST });
    const a = await ipam.requestPool({ subnet: '10.1.0.0/16' });
    // The earlier version sees no registry, so writes one with only its own pool.
    const late = oldPool(9);
    await t.store.put(`${P}/pools`, JSON.stringify({ pools: { [late.id]: late } }));
    await t.store.put(`${P}/state/${late.id}`, JSON.stringify({ cursor: '', allocated: 0, inRange: 0 }));
    assert.deepEqual(byId(await ipam.listPools('local')), byId([a, late]));
    await ipam.releasePool(late.id);
    assert.deepEqual(await ipam.listPools('local'), [a]);
  });
});
