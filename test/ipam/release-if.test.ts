// Conditional release, for cleaning up after a host that is gone: an address
// goes only if its holder is the expected one and the guard still holds, in
// one transaction; otherwise nothing changes.
import assert from 'node:assert/strict';
import { Ipam } from '../../ipam/index.js';
import { tempLocalStore, type TempStore } from './helpers.js';

describe('ipam: allocationAt and releaseIf', () => {
  let t: TempStore;
  let ipam: Ipam;
  beforeEach(async () => {
    t = await tempLocalStore();
    ipam = new Ipam({ store: t.store, hostId: 'h1' });
  });
  afterEach(() => t.cleanup());

  it('reads the holder of an address, and releases it only for the accepted holder while the guard holds', async () => {
    const p = await ipam.requestPool({ space: 'global', subnet: '10.40.0.0/24' });
    await ipam.requestAddress(p.id, { owner: { endpointId: 'e1', ifName: 'eth0' }, address: '10.40.0.7' });
    assert.equal((await ipam.allocationAt(p.id, '10.40.0.7'))?.owner.endpointId, 'e1');
    assert.equal(await ipam.allocationAt(p.id, '10.40.0.8'), undefined);

    // Not the expected holder: kept.
    assert.equal(await ipam.releaseIf(p.id, '10.40.0.7', (a) => a.host === 'h9'), undefined);
    // The guard fails (the host is back): kept, and answered at once (no CAS retries: the unit test's 2 s limit).
    await t.store.put('overlay/hosts/h1', '{}');
    assert.equal(await ipam.releaseIf(p.id, '10.40.0.7', (a) => a.host === 'h1', [{ key: 'overlay/hosts/h1', absent: true }]), undefined);
    assert.equal((await ipam.usage(p.id)).allocated, 1);
    // Guard holds: released, owner index and counters with it.
    await t.store.delete('overlay/hosts/h1');
    assert.equal((await ipam.releaseIf(p.id, '10.40.0.7', (a) => a.host === 'h1', [{ key: 'overlay/hosts/h1', absent: true }]))?.address, '10.40.0.7');
    assert.equal(await ipam.allocationAt(p.id, '10.40.0.7'), undefined);
    assert.deepEqual(await ipam.releaseByOwner({ endpointId: 'e1' }), []);
    assert.equal((await ipam.usage(p.id)).allocated, 0);
    // Twice: nothing to do.
    assert.equal(await ipam.releaseIf(p.id, '10.40.0.7', () => true), undefined);
  });
});
