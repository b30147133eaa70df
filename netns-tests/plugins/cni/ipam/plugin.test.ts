// strand-ipam under Debian's reference bridge and macvlan plugins: the way a
// runtime drives them (through the conflist runner), checked against the
// kernel (`ip -j`) and with real traffic.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../../../../ipam/index.js';
import { invokePlugin, invokePluginRaw } from '../../../../plugins/cni/protocol/exec.js';
import { CniError } from '../../../../plugins/cni/protocol/types.js';
import { openStore } from '../../../../store/index.js';
import { ipJson, run, useTestBed, type TestBed } from '../../../../test/support/harness.js';
import { ipamPluginPath } from '../ipam-bin.js';
import { runConflist, type Conflist, type RunOptions, expectCniError } from '../../../../test/support/cni-runtime.js';

interface Rig {
  host: string;
  path: string[];
  store: string;
  cacheDir: string;
  opts(containerId: string, netns: string, extra?: Partial<RunOptions>): RunOptions & { verb: 'ADD' };
}

async function rig(bed: TestBed): Promise<Rig> {
  const host = bed.netns('h').name;
  run('ip', ['-n', host, 'link', 'set', 'lo', 'up']);
  const { path, store } = ipamPluginPath(bed, host);
  const cacheDir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-cache-')));
  return {
    host,
    path,
    store,
    cacheDir,
    opts: (containerId, netns, extra = {}) => ({ containerId, netns: `/run/netns/${netns}`, ifName: 'eth0', path, cacheDir, ...extra, verb: 'ADD' }),
  };
}

function bridgeList(name: string, ipam: Record<string, unknown>, version = '1.0.0'): Conflist {
  // Reference plugins v1.1.1 refuse 1.1.0 configs, so the chain speaks 1.0.0 or older.
  return { cniVersion: version, name, plugins: [{ type: 'bridge', bridge: `sb-${name}`.slice(0, 15), isGateway: true, ipam: { type: 'strand-ipam', ...ipam } }] };
}

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/** The container's eth0 addresses as the kernel has them, "ip/len". */
function kernelAddrs(ns: string): string[] {
  const link = ipJson<IpAddr>(['addr', 'show'], ns).find((l) => l.ifname === 'eth0');
  return (link?.addr_info ?? []).filter((a) => !a.local.startsWith('fe80')).map((a) => `${a.local}/${a.prefixlen}`);
}

function ping(from: string, to: string): boolean {
  return run('ip', ['netns', 'exec', from, 'ping', '-c', '1', '-W', '2', to], { allowFail: true }).status === 0;
}


/** strand's own view of a network's allocations (secondary to the kernel's). */
async function allocated(storeUrl: string): Promise<string[]> {
  const store = await openStore(storeUrl);
  try {
    const ipam = new Ipam({ store });
    const out: string[] = [];
    for (const p of await ipam.listPools()) for (const a of await ipam.listAllocations(p.id)) out.push(a.address);
    return out.sort();
  } finally {
    await store.close();
  }
}

describe('strand-ipam under the reference plugins', function () {
  this.timeout(120_000);
  const bed = useTestBed();

  it('reference bridge: ADD, CHECK, ping between containers, DEL frees, DEL again is fine', async () => {
    const r = await rig(bed());
    const list = bridgeList('rb1', { ranges: [[{ subnet: '10.110.0.0/24' }], [{ subnet: 'fd00:110::/64' }]], routes: [{ dst: '0.0.0.0/0' }] });
    const c1 = bed().netns('c').name;
    const c2 = bed().netns('c').name;
    const a1 = await runConflist(list, r.opts('ctr1', c1));
    const a2 = await runConflist(list, r.opts('ctr2', c2));
    // The reference bridge puts strand-ipam's addresses on the container side.
    assert.deepEqual(a1.result.ips, [
      { address: '10.110.0.2/24', gateway: '10.110.0.1', interface: 2 },
      { address: 'fd00:110::2/64', gateway: 'fd00:110::1', interface: 2 },
    ]);
    assert.deepEqual(kernelAddrs(c1), ['10.110.0.2/24', 'fd00:110::2/64']);
    assert.deepEqual(kernelAddrs(c2), ['10.110.0.3/24', 'fd00:110::3/64']);
    assert.equal(a2.result.ips![0]!.address, '10.110.0.3/24');
    assert.ok(ipJson<{ dst: string; gateway?: string }>(['route', 'show'], c1).some((x) => x.dst === 'default' && x.gateway === '10.110.0.1'));
    assert.ok(ping(c1, '10.110.0.3'), 'c1 reaches c2');
    assert.ok(ping(c2, '10.110.0.1'), 'c2 reaches the gateway on the bridge');

    await runConflist(list, { ...r.opts('ctr1', c1), verb: 'CHECK' });
    await runConflist(list, { ...r.opts('ctr1', c1), verb: 'DEL' });
    await runConflist(list, { ...r.opts('ctr1', c1), verb: 'DEL' });
    await runConflist(list, { ...r.opts('ctr1', ''), netns: '', verb: 'DEL' });
    assert.deepEqual(kernelAddrs(c1), []);
    assert.deepEqual(await allocated(r.store), ['10.110.0.3', 'fd00:110::3']);
    // The freed address can be taken again, here by asking for it.
    const c3 = bed().netns('c').name;
    const a3 = await runConflist(list, r.opts('ctr3', c3, { cniArgs: 'IgnoreUnknown=1;IP=10.110.0.2' }));
    assert.equal(a3.result.ips![0]!.address, '10.110.0.2/24');
    assert.deepEqual(kernelAddrs(c3), ['10.110.0.2/24', 'fd00:110::4/64']);
    assert.ok(ping(c3, '10.110.0.3'));
  });

  for (const version of ['0.4.0', '0.3.1', '0.3.0']) {
    it(`reference bridge reads strand-ipam's ${version} result (ips[].version present)`, async () => {
      const r = await rig(bed());
      const c = bed().netns('c').name;
      const added = await runConflist(bridgeList('rv', { ranges: [[{ subnet: '10.111.0.0/24' }]] }, version), r.opts('ctr1', c));
      assert.equal(added.raw.cniVersion, version);
      assert.deepEqual(added.raw.ips, [{ version: '4', interface: 2, address: '10.111.0.2/24', gateway: '10.111.0.1' }]);
      assert.deepEqual(kernelAddrs(c), ['10.111.0.2/24']);
      if (version === '0.4.0') await runConflist(bridgeList('rv', { ranges: [[{ subnet: '10.111.0.0/24' }]] }, version), { ...r.opts('ctr1', c), verb: 'CHECK' });
      await runConflist(bridgeList('rv', { ranges: [[{ subnet: '10.111.0.0/24' }]] }, version), { ...r.opts('ctr1', c), verb: 'DEL' });
      assert.deepEqual(await allocated(r.store), []);
    });
  }

  it('reference macvlan: ADD, ping between containers, DEL frees', async () => {
    const r = await rig(bed());
    // A veth end is the master (this kernel has no dummy links).
    run('ip', ['-n', r.host, 'link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'm1']);
    run('ip', ['-n', r.host, 'link', 'set', 'm0', 'up']);
    run('ip', ['-n', r.host, 'link', 'set', 'm1', 'up']);
    const list: Conflist = { cniVersion: '1.0.0', name: 'mv', plugins: [{ type: 'macvlan', master: 'm0', mode: 'bridge', ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.112.0.0/24', rangeStart: '10.112.0.50' }]] } }] };
    const c1 = bed().netns('c').name;
    const c2 = bed().netns('c').name;
    const a1 = await runConflist(list, r.opts('ctr1', c1));
    await runConflist(list, r.opts('ctr2', c2));
    assert.deepEqual(a1.result.ips, [{ address: '10.112.0.50/24', gateway: '10.112.0.1', interface: 0 }]);
    assert.deepEqual(kernelAddrs(c1), ['10.112.0.50/24']);
    assert.deepEqual(kernelAddrs(c2), ['10.112.0.51/24']);
    assert.equal(ipJson<{ link_type?: string; linkinfo?: { info_kind: string } }>(['-d', 'link', 'show', 'dev', 'eth0'], c1)[0]!.linkinfo?.info_kind, 'macvlan');
    assert.ok(ping(c1, '10.112.0.51'));
    await runConflist(list, { ...r.opts('ctr1', c1), verb: 'CHECK' });
    await runConflist(list, { ...r.opts('ctr1', c1), verb: 'DEL' });
    await runConflist(list, { ...r.opts('ctr2', c2), verb: 'DEL' });
    assert.deepEqual(await allocated(r.store), []);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c1).map((l) => l.ifname), ['lo']);
  });

  it('dataDir puts the allocations in a store of its own', async () => {
    const r = await rig(bed());
    const dataDir = bed().tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-data-')));
    const c = bed().netns('c').name;
    const list = bridgeList('dd', { ranges: [[{ subnet: '10.113.0.0/24' }]], dataDir });
    await runConflist(list, r.opts('ctr1', c));
    assert.deepEqual(await allocated(`local://${dataDir}`), ['10.113.0.2']);
    assert.deepEqual(await allocated(r.store), []);
    await runConflist(list, { ...r.opts('ctr1', c), verb: 'DEL' });
    assert.deepEqual(await allocated(`local://${dataDir}`), []);
  });

  it('16 ADDs at once from separate processes get distinct addresses; DEL of all frees them all', async () => {
    const r = await rig(bed());
    const list = bridgeList('many', { ranges: [[{ subnet: '10.114.0.0/24' }]] });
    const ns = Array.from({ length: 16 }, () => bed().netns('m').name);
    const adds = await Promise.all(ns.map((n, i) => runConflist(list, r.opts(`ctr${i}`, n))));
    const addrs = adds.map((a) => a.result.ips![0]!.address);
    assert.equal(new Set(addrs).size, 16);
    ns.forEach((n, i) => assert.deepEqual(kernelAddrs(n), [addrs[i]]));
    assert.ok(ping(ns[0]!, addrs[15]!.split('/')[0]!));
    await Promise.all(ns.map((n, i) => runConflist(list, { ...r.opts(`ctr${i}`, n), verb: 'DEL' })));
    assert.deepEqual(await allocated(r.store), []);
  });

  it('GC (sent to strand-ipam directly: the reference bridge has none) frees stale addresses and keeps valid ones', async () => {
    const r = await rig(bed());
    const ipam = { ranges: [[{ subnet: '10.115.0.0/24' }]] };
    const list = bridgeList('gcn', ipam);
    const cs = [bed().netns('g').name, bed().netns('g').name, bed().netns('g').name];
    for (const [i, c] of cs.entries()) await runConflist(list, r.opts(`ctr${i}`, c));
    const gc = (keys: Record<string, unknown>) =>
      invokePlugin({ type: 'strand-ipam', path: r.path, command: 'GC', config: { cniVersion: '1.1.0', name: 'gcn', type: 'bridge', ipam: { type: 'strand-ipam', ...ipam }, ...keys } });
    await gc({});
    assert.deepEqual(await allocated(r.store), ['10.115.0.2', '10.115.0.3', '10.115.0.4']);
    await gc({ 'cni.dev/valid-attachments': [{ containerID: 'ctr0', ifname: 'eth0' }], 'cni.dev/attachments': [{ containerID: 'ctr0', ifname: 'eth0' }] });
    assert.deepEqual(await allocated(r.store), ['10.115.0.2']);
    // ctr1's old address is free: the next container may ask for it.
    const c = bed().netns('g').name;
    const again = await runConflist(list, r.opts('ctr9', c, { cniArgs: 'IgnoreUnknown=1;IP=10.115.0.3' }));
    assert.deepEqual(kernelAddrs(c), ['10.115.0.3/24']);
    assert.equal(again.result.ips![0]!.address, '10.115.0.3/24');
    await runConflist(list, { ...r.opts('ctr0', cs[0]!), verb: 'CHECK' });
  });

  it('STATUS through the executable: ready, then 50 when the range set is exhausted', async () => {
    const r = await rig(bed());
    const ipam = { ranges: [[{ subnet: '10.116.0.0/30' }]] };
    const conf = { cniVersion: '1.1.0', name: 'st', type: 'bridge', ipam: { type: 'strand-ipam', ...ipam } };
    const status = () => invokePluginRaw({ type: 'strand-ipam', path: r.path, command: 'STATUS', config: conf });
    assert.deepEqual(await status(), { exitCode: 0, stdout: '', stderr: '' });
    const c = bed().netns('c').name;
    await runConflist(bridgeList('st', ipam), r.opts('ctr1', c));
    const o = await status();
    assert.equal(o.exitCode, 1);
    assert.deepEqual(JSON.parse(o.stdout), { cniVersion: '1.1.0', code: 50, msg: 'strand-ipam: no IP addresses available in range set: 10.116.0.1-10.116.0.2 (network "st")' });
    // The full range is also what the next ADD through the bridge reports.
    await expectCniError(runConflist(bridgeList('st', ipam), r.opts('ctr2', bed().netns('c').name)), 999, /no IP addresses available in range set/);
  });

  it('bad IPAM config through the reference bridge: code 7 naming the problem, nothing allocated', async () => {
    const r = await rig(bed());
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ranges: [[{ subnet: '10.117.0.300/24' }]] }, '', /ipam\.ranges\[0\]\[0\]\.subnet "10\.117\.0\.300\/24"/],
      [{ ranges: [[{ subnet: '10.117.0.0/24' }, { subnet: 'fd00::/64' }]] }, '', /mixes address families/],
      [{ ranges: [[{ subnet: '10.117.0.0/24' }]] }, 'IgnoreUnknown=1;IP=10.118.0.5', /requested IP 10\.118\.0\.5 is in no range/],
      [{ ranges: [[{ subnet: '10.117.0.0/24' }]], routes: [{ dst: '10.0.0.0' }] }, '', /ipam\.routes\[0\]\.dst "10\.0\.0\.0": missing/],
    ];
    for (const [ipam, cniArgs, msg] of cases) {
      const c = bed().netns('c').name;
      await expectCniError(runConflist(bridgeList('bad', ipam), r.opts('ctr1', c, { cniArgs })), 7, msg);
      // The reference bridge leaves its veth behind after a failed ADD and relies on the runtime's DEL.
      await runConflist(bridgeList('bad', ipam), { ...r.opts('ctr1', c), verb: 'DEL' });
      assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c).map((l) => l.ifname), ['lo']);
    }
    assert.deepEqual(await allocated(r.store), []);
  });
});
