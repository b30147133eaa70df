import assert from 'node:assert/strict';
import { Ipam, type Owner } from '../../ipam/index.js';
import type { Store } from '../../store/types.js';
import { BACKENDS, type TempStore, dump, rejectsCleanly } from './helpers.js';

const c = (containerId: string, ifName = 'eth0'): Owner => ({ containerId, ifName });

for (const backend of BACKENDS) describe(`ipam (${backend.name})`, function () {
  this.timeout(60_000);
  let t: TempStore;
  let ipam: Ipam;

  before(() => backend.before());
  after(() => backend.after());
  beforeEach(async () => {
    t = await backend.fresh();
    ipam = new Ipam({ store: t.store, hostId: 'h1' });
  });
  afterEach(async () => {
    await t.cleanup();
  });

  describe('pools', () => {
    it('creates a pool by subnet, canonical, with an opaque id', async () => {
      const p = await ipam.requestPool({ subnet: '2001:DB8:0:0::/64', gateway: '2001:db8::0:1', ipRange: '2001:db8::/80', auxAddresses: { r: '2001:db8::a' } });
      assert.match(p.id, /^local-[0-9a-f]{16}$/);
      assert.equal(p.subnet, '2001:db8::/64');
      assert.equal(p.gateway, '2001:db8::1');
      assert.equal(p.ipRange, '2001:db8::/80');
      assert.deepEqual(p.auxAddresses, { r: '2001:db8::a' });
      assert.deepEqual(await ipam.getPool(p.id), p);
      assert.deepEqual(await ipam.listPools(), [p]);
      assert.deepEqual(await ipam.listPools('global'), []);
    });

    it('takes the next free default pool, avoiding pools and host routes (not the default route)', async () => {
      const routes = ['0.0.0.0/0', '172.18.5.0/24', '10.0.0.0/8'];
      ipam = new Ipam({ store: t.store, hostId: 'h1', hostRoutes: async () => routes });
      assert.equal((await ipam.requestPool({})).subnet, '172.17.0.0/16');
      assert.equal((await ipam.requestPool({})).subnet, '172.19.0.0/16');
      await ipam.requestPool({ subnet: '172.20.0.0/15' });
      assert.equal((await ipam.requestPool({})).subnet, '172.22.0.0/16');
    });

    it("says 'exhausted' when no default pool is left, and writes nothing", async () => {
      ipam = new Ipam({ store: t.store, hostId: 'h1', defaultPools: { local: [{ base: '10.9.0.0/23', size: 24 }] } });
      assert.equal((await ipam.requestPool({})).subnet, '10.9.0.0/24');
      assert.equal((await ipam.requestPool({})).subnet, '10.9.1.0/24');
      await rejectsCleanly(t.store, () => ipam.requestPool({}), 'exhausted', /10\.9\.0\.0\/23 in \/24s.*give a subnet/);
      await rejectsCleanly(t.store, () => ipam.requestPool({ v6: true }), 'exhausted', /no default IPv6 pools/);
    });

    it('rejects an overlapping pool in the same space, naming it; other spaces and hosts are separate', async () => {
      const a = await ipam.requestPool({ subnet: '10.1.0.0/16' });
      await rejectsCleanly(t.store, () => ipam.requestPool({ subnet: '10.1.2.0/24' }), 'exists', new RegExp(`overlaps pool ${a.id} \\(10\\.1\\.0\\.0/16\\)`));
      await rejectsCleanly(t.store, () => ipam.requestPool({ subnet: '10.0.0.0/8' }), 'exists', /overlaps pool/);
      // The global space and another host's local space are separate address spaces.
      const g = await ipam.requestPool({ subnet: '10.1.0.0/16', space: 'global' });
      assert.match(g.id, /^global-/);
      const other = new Ipam({ store: t.store, hostId: 'h2' });
      await other.requestPool({ subnet: '10.1.0.0/16' });
      assert.equal((await other.listPools('local')).length, 1);
      assert.deepEqual(await other.listPools('global'), [g]);
      await rejectsCleanly(t.store, () => other.requestPool({ subnet: '10.1.0.0/24', space: 'global' }), 'exists', new RegExp(g.id));
      // Key layout: global keys are shared, local keys carry the host id.
      const keys = Object.keys(await dump(t.store));
      // One key per pool, and no registry key holding them all.
      assert.ok(keys.includes(`ipam/global/pools/${g.id}`));
      assert.ok(keys.includes(`ipam/local/h1/pools/${a.id}`));
      assert.equal(keys.filter((k) => k.startsWith('ipam/local/h2/pools/')).length, 1);
      assert.ok(!keys.some((k) => k.endsWith('/pools')));
      assert.ok(keys.every((k) => k.startsWith('ipam/global/') || k.startsWith('ipam/local/h1/') || k.startsWith('ipam/local/h2/')));
    });

    it('rejects bad pool requests with a typed error naming the problem and writes nothing', async () => {
      await ipam.requestPool({ subnet: '10.50.0.0/24' });
      const cases: [Parameters<Ipam['requestPool']>[0], RegExp][] = [
        [{ subnet: '10.0.0.300/24' }, /invalid subnet "10\.0\.0\.300\/24": octet 300/],
        [{ subnet: '10.0.0.1/24' }, /host bits are set; the network is 10\.0\.0\.0\/24/],
        [{ subnet: 'banana' }, /invalid subnet "banana"/],
        [{ subnet: '10.0.0.0/24', gateway: '10.0.1.1' }, /gateway 10\.0\.1\.1 is outside subnet 10\.0\.0\.0\/24/],
        [{ subnet: '10.0.0.0/24', gateway: '10.0.0.255' }, /gateway 10\.0\.0\.255 is the broadcast address/],
        [{ subnet: '10.0.0.0/24', gateway: '10.0.0.x' }, /invalid gateway "10\.0\.0\.x"/],
        [{ subnet: '10.0.0.0/24', ipRange: '10.0.1.0/25' }, /ip range 10\.0\.1\.0\/25 is outside subnet 10\.0\.0\.0\/24/],
        [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/23' }, /ip range 10\.0\.0\.0\/23 is outside subnet/],
        [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.1/25' }, /invalid ip range "10\.0\.0\.1\/25": host bits/],
        [{ subnet: '10.0.0.0/24', ipRange: '2001:db8::/64' }, /outside subnet/],
        [{ subnet: '10.0.0.0/24', auxAddresses: { a: '10.0.9.9' } }, /auxiliary address "a" 10\.0\.9\.9 is outside subnet/],
        [{ subnet: '10.0.0.0/24', gateway: '10.0.0.1', auxAddresses: { a: '10.0.0.1' } }, /auxiliary address "a" 10\.0\.0\.1 is the gateway/],
        [{ subnet: '10.0.0.0/24', v6: true }, /is IPv4 but IPv6 was requested/],
        [{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' }, /range start 10\.0\.1\.5 is outside subnet 10\.0\.0\.0\/24/],
        [{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.50', rangeEnd: '10.0.0.40' }, /range start 10\.0\.0\.50 is after range end 10\.0\.0\.40/],
        [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/25', rangeEnd: '10.0.0.40' }, /either as a CIDR or as rangeStart\/rangeEnd/],
        [{ gateway: '10.0.0.1' }, /need an explicit subnet/],
        [{ subnet: '10.0.0.0/24', space: 'galactic' as 'global' }, /invalid address space "galactic"/],
      ];
      for (const [req, msg] of cases) await rejectsCleanly(t.store, () => ipam.requestPool(req), 'invalid', msg);
    });

    it('releases an empty pool; refuses while addresses are allocated', async () => {
      const p = await ipam.requestPool({ subnet: '10.2.0.0/24' });
      await ipam.requestAddress(p.id, { owner: c('a') });
      await rejectsCleanly(t.store, () => ipam.releasePool(p.id), 'in-use', /still has 1 allocated/);
      await ipam.releaseByOwner(c('a'));
      await ipam.releasePool(p.id);
      await assert.rejects(ipam.getPool(p.id), { code: 'not-found' });
      assert.deepEqual(await ipam.listPools(), []);
      // The subnet is free again.
      await ipam.requestPool({ subnet: '10.2.0.0/24' });
    });

    it("answers 'not-found' for unknown pool ids everywhere, writing nothing", async () => {
      const gone = await ipam.requestPool({ subnet: '10.3.0.0/24' });
      await ipam.releasePool(gone.id);
      for (const id of [gone.id, 'local-0000000000000000', 'global-0123456789abcdef', '../etc', '']) {
        await rejectsCleanly(t.store, () => ipam.getPool(id), 'not-found', /unknown pool id/);
        await rejectsCleanly(t.store, () => ipam.releasePool(id), 'not-found', /unknown pool id/);
        await rejectsCleanly(t.store, () => ipam.requestAddress(id, { owner: c('a') }), 'not-found', /unknown pool id/);
        await rejectsCleanly(t.store, () => ipam.releaseAddress(id, '10.3.0.2'), 'not-found', /unknown pool id/);
        await rejectsCleanly(t.store, () => ipam.listAllocations(id), 'not-found', /unknown pool id/);
      }
    });
  });

  describe('addresses', () => {
    it('hands out addresses in order after the cursor, never network, broadcast or reserved ones', async () => {
      const p = await ipam.requestPool({ subnet: '10.4.0.0/29', gateway: '10.4.0.1', auxAddresses: { printer: '10.4.0.4' } });
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await ipam.requestAddress(p.id, { owner: c(`k${i}`) });
        assert.equal(r.gateway, '10.4.0.1');
        assert.equal(r.cidr, `${r.address}/29`);
        got.push(r.address);
      }
      assert.deepEqual(got, ['10.4.0.2', '10.4.0.3', '10.4.0.5', '10.4.0.6']);
      await rejectsCleanly(t.store, () => ipam.requestAddress(p.id, { owner: c('x') }), 'exhausted', new RegExp(`pool ${p.id} \\(10\\.4\\.0\\.0/29\\) is exhausted: all 4`));
      assert.deepEqual(await ipam.usage(p.id), { allocated: 4, inRange: 4, capacity: 4n });
    });

    it('does not reuse a released address at once; wraps around to it later', async () => {
      const p = await ipam.requestPool({ subnet: '10.5.0.0/24' });
      const a = await ipam.requestAddress(p.id, { owner: c('a') });
      const b = await ipam.requestAddress(p.id, { owner: c('b') });
      assert.deepEqual([a.address, b.address], ['10.5.0.1', '10.5.0.2']);
      await ipam.releaseAddress(p.id, a.address);
      assert.equal((await ipam.requestAddress(p.id, { owner: c('c') })).address, '10.5.0.3');
      // Fill the rest: the cursor wraps and finds 10.5.0.1, the only free one.
      for (let i = 4; i <= 254; i++) assert.equal((await ipam.requestAddress(p.id, { owner: c(`f${i}`) })).address, `10.5.0.${i}`);
      assert.equal((await ipam.requestAddress(p.id, { owner: c('last') })).address, '10.5.0.1');
      await assert.rejects(ipam.requestAddress(p.id, { owner: c('none') }), { code: 'exhausted' });
    });

    it('finds free addresses across blocks after wrapping into a dense pool', async () => {
      const p = await ipam.requestPool({ subnet: '10.6.0.0/22' });
      for (let i = 0; i < 1022; i++) await ipam.requestAddress(p.id, { owner: c(`f${i}`) });
      await assert.rejects(ipam.requestAddress(p.id, { owner: c('x') }), { code: 'exhausted' });
      await ipam.releaseAddress(p.id, '10.6.2.200');
      await ipam.releaseAddress(p.id, '10.6.0.9');
      await ipam.releaseAddress(p.id, '10.6.3.254');
      // Cursor at 10.6.3.254 (the last handed out): after it, wrap, then in order.
      const next = [];
      for (let i = 0; i < 3; i++) next.push((await ipam.requestAddress(p.id, { owner: c(`n${i}`) })).address);
      assert.deepEqual(next, ['10.6.0.9', '10.6.2.200', '10.6.3.254']);
      assert.deepEqual(await ipam.usage(p.id), { allocated: 1022, inRange: 1022, capacity: 1022n });
      assert.equal((await ipam.listAllocations(p.id)).length, 1022);
    });

    it('allocates from the ip range only; a given address may be anywhere in the subnet unless strictRange', async () => {
      const p = await ipam.requestPool({ subnet: '10.7.0.0/24', ipRange: '10.7.0.128/30', gateway: '10.7.0.1' });
      assert.equal((await ipam.requestAddress(p.id, { owner: c('a') })).address, '10.7.0.128');
      // Docker lets --ip pick any host address of the subnet; it does not count against the range.
      assert.equal((await ipam.requestAddress(p.id, { owner: c('s'), address: '10.7.0.50' })).address, '10.7.0.50');
      await rejectsCleanly(t.store, () => ipam.requestAddress(p.id, { owner: c('s2'), address: '10.7.0.51', strictRange: true }), 'invalid', /outside the ip range 10\.7\.0\.128\/30/);
      for (const x of ['b', 'd', 'e']) await ipam.requestAddress(p.id, { owner: c(x) });
      await rejectsCleanly(t.store, () => ipam.requestAddress(p.id, { owner: c('f') }), 'exhausted', /10\.7\.0\.128\/30\) is exhausted: all 4/);
      assert.deepEqual(await ipam.usage(p.id), { allocated: 5, inRange: 4, capacity: 4n });
    });

    it('allocates between CNI-style rangeStart and rangeEnd', async () => {
      const p = await ipam.requestPool({ subnet: '10.15.0.0/16', rangeStart: '10.15.1.253', rangeEnd: '10.15.2.1', gateway: '10.15.2.0' });
      assert.deepEqual([p.rangeStart, p.rangeEnd], ['10.15.1.253', '10.15.2.1']);
      const got = [];
      for (let i = 0; i < 4; i++) got.push((await ipam.requestAddress(p.id, { owner: c(`r${i}`) })).address);
      assert.deepEqual(got, ['10.15.1.253', '10.15.1.254', '10.15.1.255', '10.15.2.1']);
      await rejectsCleanly(t.store, () => ipam.requestAddress(p.id, { owner: c('x') }), 'exhausted', /\(10\.15\.1\.253-10\.15\.2\.1\) is exhausted: all 4/);
      await rejectsCleanly(t.store, () => ipam.requestAddress(p.id, { owner: c('x'), address: '10.15.0.9', strictRange: true }), 'invalid', /outside the ip range 10\.15\.1\.253-10\.15\.2\.1/);
      // Only a start: the range runs to the subnet's end.
      const q = await ipam.requestPool({ subnet: '10.16.0.0/30', rangeStart: '10.16.0.2' });
      assert.equal((await ipam.requestAddress(q.id, { owner: c('q') })).address, '10.16.0.2');
      await assert.rejects(ipam.requestAddress(q.id, { owner: c('q2') }), { code: 'exhausted' });
    });

    it('gives a requested address or says why not, writing nothing on refusal', async () => {
      const p = await ipam.requestPool({ subnet: '10.8.0.0/24', gateway: '10.8.0.1', auxAddresses: { nas: '10.8.0.9' } });
      assert.equal((await ipam.requestAddress(p.id, { owner: c('a'), address: '10.8.0.7' })).address, '10.8.0.7');
      const s = t.store;
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.0.7' }), 'exists', /10\.8\.0\.7 .* already allocated to container a \(eth0\)/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.1.7' }), 'invalid', /10\.8\.1\.7 is outside pool/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.0.0' }), 'invalid', /network address/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.0.255' }), 'invalid', /broadcast address/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.0.1' }), 'exists', /the gateway/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.0.9' }), 'exists', /auxiliary address "nas"/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '10.8.0.256' }), 'invalid', /invalid address "10\.8\.0\.256"/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: c('b'), address: '2001:db8::1' }), 'invalid', /outside pool/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, { owner: {} }), 'invalid', /containerId or endpointId/);
      await rejectsCleanly(s, () => ipam.requestAddress(p.id, {}), 'invalid', /needs an owner/);
      // A given address does not move the cursor.
      assert.equal((await ipam.requestAddress(p.id, { owner: c('n') })).address, '10.8.0.2');
    });

    it('releases: twice is not-found, reserved is invalid, by owner is idempotent', async () => {
      const p = await ipam.requestPool({ subnet: '10.9.0.0/24', gateway: '10.9.0.1' });
      const g = await ipam.requestPool({ subnet: '10.10.0.0/24', space: 'global' });
      const a = await ipam.requestAddress(p.id, { owner: c('ctr', 'eth0') });
      const b = await ipam.requestAddress(p.id, { owner: c('ctr', 'eth1') });
      const d = await ipam.requestAddress(g.id, { owner: c('ctr', 'eth1') });
      const other = await ipam.requestAddress(p.id, { owner: c('ctr2', 'eth0') });
      const released = await ipam.releaseAddress(p.id, a.address);
      assert.deepEqual(released.owner, c('ctr', 'eth0'));
      await rejectsCleanly(t.store, () => ipam.releaseAddress(p.id, a.address), 'not-found', /address 10\.9\.0\.2 is not allocated in pool/);
      await rejectsCleanly(t.store, () => ipam.releaseAddress(p.id, '10.9.0.1'), 'invalid', /is the gateway of pool/);
      await rejectsCleanly(t.store, () => ipam.releaseAddress(p.id, '10.9.0.1000'), 'invalid', /invalid address/);
      // By (id, ifName) in both spaces, then again: nothing left, no error.
      const r1 = await ipam.releaseByOwner(c('ctr', 'eth1'));
      assert.deepEqual(r1.map((x) => x.address).sort(), [b.address, d.address].sort());
      assert.deepEqual(await ipam.releaseByOwner(c('ctr', 'eth1')), []);
      assert.deepEqual((await ipam.listAllocations(p.id)).map((x) => x.address), [other.address]);
      // By id alone: every interface.
      await ipam.requestAddress(p.id, { owner: c('multi', 'eth0') });
      await ipam.requestAddress(p.id, { owner: c('multi', 'net1') });
      assert.equal((await ipam.releaseByOwner({ containerId: 'multi' })).length, 2);
      // Ids that are prefixes of each other or contain "/" stay apart.
      await ipam.requestAddress(p.id, { owner: c('ab/c') });
      await ipam.requestAddress(p.id, { owner: c('ab') });
      assert.deepEqual((await ipam.releaseByOwner({ containerId: 'ab' })).map((x) => x.owner.containerId), ['ab']);
      assert.deepEqual(await ipam.usage(p.id), { allocated: 2, inRange: 2, capacity: 253n });
    });

    it('serves Docker gateway requests: the reserved gateway, or an allocation GC leaves alone', async () => {
      const withGw = await ipam.requestPool({ subnet: '10.11.0.0/24', gateway: '10.11.0.254' });
      const before = await dump(t.store);
      assert.equal((await ipam.requestAddress(withGw.id, { gateway: true })).address, '10.11.0.254');
      assert.equal((await ipam.requestAddress(withGw.id, { gateway: true, address: '10.11.0.254' })).cidr, '10.11.0.254/24');
      assert.deepEqual(await dump(t.store), before, 'a reserved gateway is not allocated again');
      await rejectsCleanly(t.store, () => ipam.requestAddress(withGw.id, { gateway: true, address: '10.11.0.1' }), 'invalid', /has gateway 10\.11\.0\.254/);
      const noGw = await ipam.requestPool({ subnet: '10.12.0.0/24' });
      const gw = await ipam.requestAddress(noGw.id, { gateway: true });
      assert.equal(gw.address, '10.12.0.1');
      const [alloc] = await ipam.listAllocations(noGw.id);
      assert.equal(alloc!.gateway, true);
      assert.deepEqual(await ipam.gc(() => false), []);
      await ipam.releaseAddress(noGw.id, gw.address);
      await ipam.releasePool(noGw.id);
    });

    it('records owners and garbage-collects what no live attachment owns (this host only unless allHosts)', async () => {
      const p = await ipam.requestPool({ subnet: '10.13.0.0/24', space: 'global' });
      const h2 = new Ipam({ store: t.store, hostId: 'h2' });
      const owner: Owner = { containerId: 'c1', ifName: 'eth0', attachment: { pod: 'ns/web-0' } };
      await ipam.requestAddress(p.id, { owner });
      await ipam.requestAddress(p.id, { owner: c('c2') });
      await ipam.requestAddress(p.id, { owner: { endpointId: 'ep3' } });
      await h2.requestAddress(p.id, { owner: c('remote') });
      const all = await ipam.listAllocations(p.id);
      assert.deepEqual(all[0], { poolId: p.id, address: '10.13.0.1', owner, host: 'h1' });
      assert.deepEqual(all.map((a) => a.host), ['h1', 'h1', 'h1', 'h2']);
      const seen: Owner[] = [];
      const freed = await ipam.gc((o) => {
        seen.push(o);
        return o.containerId === 'c2';
      });
      assert.deepEqual(freed.map((a) => a.address), ['10.13.0.1', '10.13.0.3']);
      assert.equal(seen.length, 3, 'h2 allocations are not judged by h1');
      assert.deepEqual((await ipam.listAllocations(p.id)).map((a) => a.address), ['10.13.0.2', '10.13.0.4']);
      // An empty live set releases everything (CNI GC with no valid attachments).
      assert.equal((await h2.gc(async () => false, { allHosts: true })).length, 2);
      assert.deepEqual(await ipam.usage(p.id), { allocated: 0, inRange: 0, capacity: 254n });
      assert.deepEqual(await ipam.releaseByOwner(c('c2')), []);
    });

    it('keeps its cursor across processes restarting (state lives in the store)', async () => {
      const p = await ipam.requestPool({ subnet: '10.14.0.0/24' });
      await ipam.requestAddress(p.id, { owner: c('a') });
      await ipam.releaseAddress(p.id, '10.14.0.1');
      const fresh = new Ipam({ store: t.store, hostId: 'h1' });
      assert.equal((await fresh.requestAddress(p.id, { owner: c('b') })).address, '10.14.0.2');
    });
  });

  describe('IPv6', () => {
    // Counts store calls, to show the cost of an allocation by construction
    // rather than by timing: the same few calls, whatever the pool's size.
    function counting(store: Store): { store: Store; calls: Record<string, number> } {
      const calls: Record<string, number> = {};
      const wrapped = new Proxy(store, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (typeof v !== 'function') return v;
          return (...args: unknown[]) => {
            calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      return { store: wrapped, calls };
    }

    for (const subnet of ['2001:db8:1::/64', '2001:db8:2::/48', 'fd00::/8']) {
      it(`allocates a few hundred addresses on ${subnet} with constant store calls each`, async () => {
        const { store, calls } = counting(t.store);
        const v6 = new Ipam({ store, hostId: 'h1' });
        const p = await v6.requestPool({ subnet });
        const base = subnet.split('::')[0];
        const perAlloc: string[] = [];
        for (let i = 1; i <= 300; i++) {
          for (const k of Object.keys(calls)) delete calls[k];
          const r = await v6.requestAddress(p.id, { owner: c(`v${i}`) });
          assert.equal(r.address, `${base}::${i.toString(16)}`);
          perAlloc.push(JSON.stringify(calls));
        }
        // Every allocation after the first (which loads the pool) costs exactly one get and one txn, no list.
        assert.deepEqual(new Set(perAlloc.slice(1)), new Set([JSON.stringify({ get: 1, txn: 1 })]));
        const u = await v6.usage(p.id);
        assert.equal(u.allocated, 300);
        await v6.releaseAddress(p.id, `${base}::5`);
        assert.equal((await v6.requestAddress(p.id, { owner: c('next') })).address, `${base}::12d`);
      });
    }

    it('detects exhaustion of a small IPv6 pool and skips the subnet-router anycast address', async () => {
      const p = await ipam.requestPool({ subnet: 'fd00:1::/126' });
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await ipam.requestAddress(p.id, { owner: c(`s${i}`) })).address);
      assert.deepEqual(got, ['fd00:1::1', 'fd00:1::2', 'fd00:1::3']);
      await rejectsCleanly(t.store, () => ipam.requestAddress(p.id, { owner: c('z') }), 'exhausted', /all 3 addresses/);
    });
  });
});
