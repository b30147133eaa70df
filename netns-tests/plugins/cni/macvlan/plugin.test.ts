// strand-macvlan with strand-ipam, driven the way a runtime drives them: the
// container gets a macvlan of a master in the host namespace and an address
// of the master's own segment, so it reaches that segment's hosts directly.
// The topology's out0 (a veth to the "outside" namespace) is the master: the
// outside sees the containers' own addresses, no NAT. Plus strand-ipam under
// the reference macvlan plugin.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipJson, run, uniqueName, useTestBed, type TestBed } from '../../../../test/support/harness.js';
import { OUTSIDE, World } from '../../../../test/support/topology.js';
import { answer, ask, serve } from '../../../../test/support/traffic.js';
import { CniError } from '../../../../plugins/cni/protocol/types.js';
import { runConflist, type AddOutcome, type Conflist, type RunOptions, expectCniError } from '../../../../test/support/cni-runtime.js';
import { pluginPath } from '../plugin-bin.js';
import { heldAddresses } from '../ipam-view.js';

interface Rig {
  world: World;
  store: string;
  opts(containerId: string, netns: string, extra?: Partial<RunOptions>): RunOptions;
}

async function rig(bed: TestBed): Promise<Rig> {
  const world = new World(bed);
  const { path, store } = await pluginPath(bed, world.host.name);
  const cacheDir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-cache-')));
  return { world, store, opts: (containerId, netns, extra = {}) => ({ verb: 'ADD', containerId, netns: `/run/netns/${netns}`, ifName: 'eth0', path: [path[0]!], cacheDir, ...extra }) };
}

function addTo(list: Conflist, opts: RunOptions): Promise<AddOutcome> {
  return runConflist(list, { ...opts, verb: 'ADD' });
}

/** Addresses .100-.120 of the outside segment (203.0.113.0/24), the outside namespace as gateway. */
const IPAM = { type: 'strand-ipam', ranges: [[{ subnet: '203.0.113.0/24', rangeStart: '203.0.113.100', rangeEnd: '203.0.113.120', gateway: OUTSIDE }]] };

function macvlanConf(name: string, extra: Record<string, unknown> = {}, type = 'strand-macvlan'): Conflist {
  return { cniVersion: '1.1.0', name, plugins: [{ type, master: 'out0', ipam: IPAM, ...extra }] };
}

interface LinkInfo {
  ifname: string;
  mtu: number;
  address: string;
  link_netnsid?: number;
  linkinfo?: { info_kind: string; info_data?: { mode?: string } };
  addr_info?: { local: string; prefixlen: number }[];
}

function ctrLink(ns: string): LinkInfo {
  return ipJson<LinkInfo>(['-d', 'addr', 'show', 'dev', 'eth0'], ns)[0]!;
}

const ipOf = (added: AddOutcome): string => added.result.ips![0]!.address.split('/')[0]!;


describe('strand-macvlan CNI plugin', function () {
  this.timeout(120000);
  const bed = useTestBed();

  it('ADD, CHECK and DEL: a macvlan of the master in the container, its own address on the segment, real traffic to the outside, then nothing left', async () => {
    const r = await rig(bed());
    const list = macvlanConf('mv1');
    const c1 = bed().netns('c');
    const c2 = bed().netns('c');
    const a1 = await addTo(list, r.opts('ctr1', c1.name));
    const a2 = await addTo(list, r.opts('ctr2', c2.name));

    // Result format: one interface, the container's, and every IP pointing at it.
    assert.deepEqual(a1.result.interfaces!.map((i) => [i.name, i.sandbox]), [['eth0', `/run/netns/${c1.name}`]]);
    assert.deepEqual(a1.result.ips!.map((ip) => [ip.interface, ip.gateway]), [[0, OUTSIDE]]);
    assert.equal(a1.raw.cniVersion, '1.1.0');
    for (const k of Object.keys(a1.raw)) assert.ok(['cniVersion', 'interfaces', 'ips', 'routes', 'dns'].includes(k), `unexpected result key ${k}`);
    const ip1 = ipOf(a1);
    const ip2 = ipOf(a2);
    assert.match(ip1, /^203\.0\.113\.(10\d|11\d|120)$/);
    assert.notEqual(ip1, ip2);

    // The kernel, read independently: a macvlan in bridge mode whose parent is out0 in the host namespace.
    const l1 = ctrLink(c1.name);
    assert.equal(l1.linkinfo?.info_kind, 'macvlan');
    assert.equal(l1.linkinfo?.info_data?.mode, 'bridge');
    assert.equal(l1.address, a1.result.interfaces![0]!.mac);
    assert.ok(l1.addr_info!.some((a) => a.local === ip1 && a.prefixlen === 24));
    assert.equal(l1.mtu, 1500, "the master's MTU by default");
    const out0Index = ipJson<{ ifindex: number }>(['link', 'show', 'dev', 'out0'], r.world.host.name)[0]!.ifindex;
    assert.equal(ipJson<{ link_index?: number; link?: string }>(['link', 'show', 'dev', 'eth0'], c1.name)[0]!.link_index ?? -1, out0Index);

    // Real traffic: both containers reach the outside with their own addresses; bridge mode lets them reach each other.
    await serve(bed(), r.world.outside.name, 'tcp', 8000, 'out');
    assert.equal(await answer(() => ask(c1.name, 'tcp', OUTSIDE, 8000)), `out ${ip1}`);
    assert.equal(await answer(() => ask(c2.name, 'tcp', OUTSIDE, 8000)), `out ${ip2}`);
    await serve(bed(), r.world.outside.name, 'udp', 8001, 'outu');
    assert.equal(await answer(() => ask(c2.name, 'udp', OUTSIDE, 8001)), `outu ${ip2}`);
    await serve(bed(), c2.name, 'tcp', 7000, 'c2');
    assert.equal(await answer(() => ask(c1.name, 'tcp', ip2, 7000)), `c2 ${ip1}`);
    assert.equal(await answer(() => ask(r.world.outside.name, 'tcp', ip2, 7000)), `c2 ${OUTSIDE}`, 'the outside reaches a container at its own address');

    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'CHECK' }));
    // CHECK compares the namespace with the result and the config.
    await assert.rejects(runConflist(macvlanConf('mv1', { mode: 'private' }), r.opts('ctr1', c1.name, { verb: 'CHECK' })), /bridge mode, the config says private/);
    run('ip', ['-n', c1.name, 'addr', 'del', `${ip1}/24`, 'dev', 'eth0']);
    await assert.rejects(runConflist(list, r.opts('ctr1', c1.name, { verb: 'CHECK' })), /address 203\.0\.113\.\d+\/24 is missing/);

    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' }));
    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' })); // again: still fine
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c1.name).map((l) => l.ifname), ['lo']);
    assert.deepEqual((await heldAddresses(r.store, 'mv1')).map((h) => [h.containerId, h.address]), [['ctr2', ip2]]);
    await runConflist(list, r.opts('ctr2', c2.name, { verb: 'DEL' }));
    assert.deepEqual(await heldAddresses(r.store, 'mv1'), []);
    // The master is untouched: still out0 with the host's address, nothing else made in the host namespace.
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).map((l) => l.ifname).sort(), ['lo', 'out0']);
  });

  for (const mode of ['private', 'vepa'] as const) {
    it(`mode ${mode}: containers reach the outside, but not each other through the host`, async () => {
      const r = await rig(bed());
      const list = macvlanConf(`m${mode}`, { mode });
      const c1 = bed().netns('c');
      const c2 = bed().netns('c');
      const a1 = await addTo(list, r.opts('ctr1', c1.name));
      const a2 = await addTo(list, r.opts('ctr2', c2.name));
      assert.equal(ctrLink(c1.name).linkinfo?.info_data?.mode, mode);
      await serve(bed(), r.world.outside.name, 'tcp', 8000, 'out');
      assert.equal(await answer(() => ask(c1.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(a1)}`);
      assert.equal(await answer(() => ask(c2.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(a2)}`);
      // private: never between macvlans of one master; vepa: only if the switch hairpins (the outside veth does not).
      await serve(bed(), c2.name, 'tcp', 7000, 'c2');
      assert.equal(await ask(c1.name, 'tcp', ipOf(a2), 7000, 1000), null);
      await runConflist(list, r.opts('ctr1', c1.name, { verb: 'CHECK' }));
      await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' }));
      await runConflist(list, r.opts('ctr2', c2.name, { verb: 'DEL' }));
      assert.deepEqual(await heldAddresses(r.store, `m${mode}`), []);
    });
  }

  it('mode passthru takes the master exclusively', async () => {
    const r = await rig(bed());
    const pass = macvlanConf('mpass', { mode: 'passthru' });
    const c1 = bed().netns('c');
    const c2 = bed().netns('c');
    const a1 = await addTo(pass, r.opts('ctr1', c1.name));
    assert.equal(ctrLink(c1.name).linkinfo?.info_data?.mode, 'passthru');
    await serve(bed(), r.world.outside.name, 'tcp', 8000, 'out');
    assert.equal(await answer(() => ask(c1.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(a1)}`);
    // A second macvlan on the master, passthru or not, is refused, and its address goes back.
    // (Same network name: strand-ipam gives one network per subnet in a store.)
    const bridged = macvlanConf('mpass', { mode: 'bridge' });
    // A second passthru is named for what it is; for the bridge-mode one the kernel says only EBUSY,
    // and the message names the link that could not be made.
    await assert.rejects(addTo(pass, r.opts('ctr2', c2.name)), /passthru mode: parent "[^"]+" carries one container at a time and already has one/);
    await assert.rejects(addTo(bridged, r.opts('ctr3', c2.name)), /cannot create macvlan link "eth0"/);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c2.name).map((l) => l.ifname), ['lo']);
    assert.deepEqual((await heldAddresses(r.store, 'mpass')).map((h) => h.containerId), ['ctr1']);
    await runConflist(pass, r.opts('ctr1', c1.name, { verb: 'CHECK' }));
    await runConflist(pass, r.opts('ctr1', c1.name, { verb: 'DEL' }));
    // Released: the master takes a bridge-mode macvlan again.
    const again = await addTo(bridged, r.opts('ctr3', c2.name));
    assert.equal(ctrLink(c2.name).linkinfo?.info_data?.mode, 'bridge');
    assert.equal(await answer(() => ask(c2.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(again)}`);
  });

  it('refuses a missing master, an MTU above the master\'s and an unknown mode with a code and a message naming the problem, taking no address', async () => {
    const r = await rig(bed());
    const c = bed().netns('c');
    await expectCniError(addTo(macvlanConf('bad', { master: 'nosuch0' }), r.opts('ctr1', c.name)), 999, /"nosuch0" does not exist/);
    await expectCniError(addTo(macvlanConf('bad', { mtu: 9000 }), r.opts('ctr1', c.name)), 7, /mtu "9000".*1500/);
    await expectCniError(addTo(macvlanConf('bad', { mode: 'sideways' }), r.opts('ctr1', c.name)), 7, /macvlan_mode "sideways"/);
    await expectCniError(addTo(macvlanConf('bad', { mtu: 'big' }), r.opts('ctr1', c.name)), 7, /"mtu"/);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c.name).map((l) => l.ifname), ['lo']);
    assert.deepEqual(await heldAddresses(r.store, 'bad'), []);
    // A smaller MTU is taken.
    await addTo(macvlanConf('bad', { mtu: 1400 }), r.opts('ctr1', c.name));
    assert.equal(ctrLink(c.name).mtu, 1400);
  });

  it('takes the default-route interface when no master is given', async () => {
    const r = await rig(bed());
    const noMaster = (name: string): Conflist => ({ cniVersion: '1.1.0', name, plugins: [{ type: 'strand-macvlan', ipam: IPAM }] });
    const c = bed().netns('c');
    await expectCniError(addTo(noMaster('dflt'), r.opts('ctr1', c.name)), 7, /no "master" given and the host has no default route/);
    run('ip', ['-n', r.world.host.name, 'route', 'add', 'default', 'via', OUTSIDE, 'dev', 'out0']);
    const added = await addTo(noMaster('dflt'), r.opts('ctr1', c.name));
    const out0Index = ipJson<{ ifindex: number }>(['link', 'show', 'dev', 'out0'], r.world.host.name)[0]!.ifindex;
    assert.equal(ipJson<{ link_index?: number }>(['link', 'show', 'dev', 'eth0'], c.name)[0]!.link_index, out0Index);
    await serve(bed(), r.world.outside.name, 'tcp', 8000, 'out');
    assert.equal(await answer(() => ask(c.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(added)}`);
    await runConflist(noMaster('dflt'), r.opts('ctr1', c.name, { verb: 'CHECK' }));
    await runConflist(noMaster('dflt'), r.opts('ctr1', c.name, { verb: 'DEL' }));
  });

  it('DEL after the namespace is gone still frees the address', async () => {
    const r = await rig(bed());
    const list = macvlanConf('gone');
    // Made with ip(8), so that no handle of this process keeps it alive once its name is removed.
    const ns = uniqueName('c');
    run('ip', ['netns', 'add', ns]);
    bed().defer(() => void run('ip', ['netns', 'del', ns], { allowFail: true }));
    const added = await addTo(list, r.opts('ctr1', ns));
    const ip = ipOf(added);
    run('ip', ['netns', 'del', ns]);
    await runConflist(list, r.opts('ctr1', ns, { verb: 'DEL' }));
    await runConflist(list, r.opts('ctr1', '', { verb: 'DEL', netns: '' })); // and with no CNI_NETNS at all
    assert.deepEqual(await heldAddresses(r.store, 'gone'), []);
    const c2 = bed().netns('c');
    const re = await addTo(list, r.opts('ctr2', c2.name, { cniArgs: `IgnoreUnknown=1;IP=${ip}` }));
    assert.equal(ipOf(re), ip);
  });

  it('strand-ipam under the reference macvlan plugin: ADD, traffic, CHECK, DEL', async () => {
    const r = await rig(bed());
    const list: Conflist = { ...macvlanConf('refmv', {}, 'macvlan'), cniVersion: '1.0.0' };
    const c1 = bed().netns('c');
    const c2 = bed().netns('c');
    const a1 = await addTo(list, r.opts('ctr1', c1.name));
    const a2 = await addTo(list, r.opts('ctr2', c2.name));
    assert.deepEqual(a1.result.ips!.map((ip) => ip.interface), [0]);
    assert.equal(ctrLink(c1.name).linkinfo?.info_kind, 'macvlan');
    assert.ok(ctrLink(c1.name).addr_info!.some((a) => a.local === ipOf(a1)));
    assert.deepEqual((await heldAddresses(r.store, 'refmv')).map((h) => [h.containerId, h.address]), [['ctr1', ipOf(a1)], ['ctr2', ipOf(a2)]].sort((x, y) => x[1]!.localeCompare(y[1]!, 'en', { numeric: true })));
    await serve(bed(), r.world.outside.name, 'tcp', 8000, 'out');
    assert.equal(await answer(() => ask(c1.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(a1)}`);
    assert.equal(await answer(() => ask(c2.name, 'tcp', OUTSIDE, 8000)), `out ${ipOf(a2)}`);
    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'CHECK' }));
    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' }));
    await runConflist(list, r.opts('ctr2', c2.name, { verb: 'DEL' }));
    assert.deepEqual(await heldAddresses(r.store, 'refmv'), []);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c1.name).map((l) => l.ifname), ['lo']);
  });
});
