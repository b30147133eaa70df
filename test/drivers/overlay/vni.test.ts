// VNI allocation on a real etcd: hosts racing to create networks never share
// a VNI, a requested VNI is honoured or refused by name, and release only
// frees a VNI its network still holds.
import assert from 'node:assert/strict';
import { openStore } from '../../../store/index.js';
import type { Store } from '../../../store/types.js';
import { startEtcd, type TestServer } from '../../support/servers.js';
import { FIRST_VNI, allocateVni, releaseVni } from '../../../drivers/overlay/vni.js';
import { isStrandError } from '../../../common/errors.js';

describe('overlay VNI allocation (etcd)', function () {
  this.timeout(60000);
  let server: TestServer;
  const stores: Store[] = [];

  before(async () => {
    server = await startEtcd();
  });
  after(async () => {
    for (const s of stores.splice(0)) await s.close();
    await server.stop();
  });

  const open = async (): Promise<Store> => {
    const s = await openStore(server.url);
    stores.push(s);
    return s;
  };

  it('gives 40 networks created at once from 4 clients 40 different VNIs from the first free one up', async () => {
    const clients = await Promise.all([open(), open(), open(), open()]);
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => allocateVni(clients[i % 4]!, `net-${i}`)));
    assert.equal(new Set(got).size, 40);
    assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => FIRST_VNI + i));
    for (let i = 0; i < 40; i++) await releaseVni(clients[0]!, `net-${i}`, got[i]!);
  });

  it('honours a requested VNI, refuses one another network holds, and releases only its own', async () => {
    const s = await open();
    assert.equal(await allocateVni(s, 'net-a', 100), 100);
    assert.equal(await allocateVni(s, 'net-a', 100), 100, 'asking again for the same network is idempotent');
    await assert.rejects(allocateVni(s, 'net-b', 100), (err) => isStrandError(err, 'exists') && /VNI 100 .*net-a/.test((err as Error).message));
    await releaseVni(s, 'net-b', 100);
    await assert.rejects(allocateVni(s, 'net-c', 100), /already used/);
    await releaseVni(s, 'net-a', 100);
    assert.equal(await allocateVni(s, 'net-c', 100), 100);
  });
});
