// strand-bridge with strand-ipam, driven the way a runtime drives them:
// every verb, every result version, chained with the reference plugins,
// concurrent ADDs, GC, and bad input, checked against the kernel.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestBed, ipJson, run, waitFor, type TestBed } from '../../../../test/support/harness.js';
import { World, HOST_OUT, OUTSIDE } from '../../../../test/support/topology.js';
import { answer, ask, serve } from '../../../../test/support/traffic.js';
import { expectCniError, runConflist, type AddOutcome, type Conflist, type RunOptions } from '../../../../test/support/cni-runtime.js';
import { pluginPath } from '../plugin-bin.js';
import { openStore } from '../../../../store/index.js';

interface Rig {
  world: World;
  path: string[];
  /** The store strand's plugins keep their records in. */
  store: string;
  cacheDir: string;
  opts(containerId: string, netns: string, extra?: Partial<RunOptions>): RunOptions;
}

async function rig(bed: TestBed, daemon: boolean): Promise<Rig> {
  const world = new World(bed);
  const { path, store } = await pluginPath(bed, world.host.name, { daemon });
  const cacheDir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-cache-')));
  return {
    world,
    path,
    store,
    cacheDir,
    opts: (containerId, netns, extra = {}) => ({ verb: 'ADD', containerId, netns: `/run/netns/${netns}`, ifName: 'eth0', path, cacheDir, ...extra }),
  };
}

/** ADD through the conflist; its outcome. */
function addTo(list: Conflist, opts: RunOptions): Promise<AddOutcome> {
  return runConflist(list, { ...opts, verb: 'ADD' });
}

function bridgeConf(name: string, subnet: string, extra: Record<string, unknown> = {}, version = '1.1.0'): Conflist {
  return {
    cniVersion: version,
    name,
    plugins: [
      {
        type: 'strand-bridge',
        bridge: `br-${name}`.slice(0, 15),
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: true,
        ipam: { type: 'strand-ipam', ranges: [[{ subnet }]] },
        ...extra,
      },
    ],
  };
}

for (const daemon of [false, true]) describe(`strand-bridge CNI plugin${daemon ? ', served by strand daemon' : ', on its own'}`, function () {
  this.timeout(120000);
  const bed = useTestBed();
  const rigFor = (b: TestBed) => rig(b, daemon);

  it('ADD, CHECK and DEL: a veth on the bridge, the address, routes and NAT, then nothing left', async () => {
    const r = await rigFor(bed());
    const list = bridgeConf('net1', '10.90.0.0/24');
    const c1 = bed().netns('c');
    const c2 = bed().netns('c');
    const add1 = await addTo(list, r.opts('ctr1', c1.name));
    const add2 = await addTo(list, r.opts('ctr2', c2.name));
    const res = add1.result;
    assert.deepEqual(res.interfaces?.map((i) => [i.name, i.sandbox ?? '']), [['br-net1', ''], [res.interfaces![1]!.name, ''], ['eth0', `/run/netns/${c1.name}`]]);
    assert.equal(res.ips?.length, 1);
    assert.equal(res.ips![0]!.interface, 2);
    assert.equal(res.ips![0]!.gateway, '10.90.0.1');
    const ip1 = res.ips![0]!.address.split('/')[0]!;
    const ip2 = add2.result.ips![0]!.address.split('/')[0]!;
    assert.match(ip1, /^10\.90\.0\.\d+$/);
    assert.notEqual(ip1, ip2);

    // The kernel, read independently.
    const inC1 = ipJson<{ ifname: string; address: string; addr_info: { local: string; prefixlen: number }[] }>(['addr', 'show', 'dev', 'eth0'], c1.name)[0]!;
    assert.ok(inC1.addr_info.some((a) => a.local === ip1 && a.prefixlen === 24));
    assert.equal(inC1.address, res.interfaces![2]!.mac);
    assert.ok(ipJson<{ dst: string; gateway?: string }>(['route', 'show'], c1.name).some((x) => x.dst === 'default' && x.gateway === '10.90.0.1'));
    const hostVeth = res.interfaces![1]!.name;
    assert.equal(ipJson<{ master?: string }>(['link', 'show', 'dev', hostVeth], r.world.host.name)[0]!.master, 'br-net1');
    assert.ok(ipJson<{ addr_info: { local: string }[] }>(['addr', 'show', 'dev', 'br-net1'], r.world.host.name)[0]!.addr_info.some((a) => a.local === '10.90.0.1'));

    // Real traffic: container to container, and out through NAT.
    await serve(bed(), c2.name, 'tcp', 7000, 'c2');
    assert.equal(await answer(() => ask(c1.name, 'tcp', ip2, 7000)), `c2 ${ip1}`);
    await serve(bed(), r.world.outside.name, 'tcp', 8000, 'out');
    assert.equal(await answer(() => ask(c1.name, 'tcp', OUTSIDE, 8000)), `out ${HOST_OUT}`);

    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'CHECK' }));
    // CHECK notices a removed address.
    run('ip', ['-n', c1.name, 'addr', 'del', `${ip1}/24`, 'dev', 'eth0']);
    await assert.rejects(runConflist(list, r.opts('ctr1', c1.name, { verb: 'CHECK' })), /address 10\.90\.0\.\d+\/24 is missing/);

    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' }));
    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' })); // again: still fine
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c1.name).map((l) => l.ifname), ['lo']);
    await waitFor(`${hostVeth} to go`, () => !ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).some((l) => l.ifname === hostVeth), 5000);
    // The address is free: asked for by name, it is given again.
    const again = await addTo(list, r.opts('ctr3', c1.name, { cniArgs: `IgnoreUnknown=1;IP=${ip1}` }));
    assert.equal(again.result.ips![0]!.address, `${ip1}/24`);
  });

  for (const version of ['1.0.0', '0.4.0', '0.3.1', '0.3.0']) {
    it(`prints the result in exactly version ${version}`, async () => {
      const r = await rigFor(bed());
      const c = bed().netns('c');
      const added = await addTo(bridgeConf('vnet', '10.91.0.0/24', {}, version), r.opts('ctr1', c.name));
      assert.equal(added.raw.cniVersion, version);
      const ips = added.raw.ips as { version?: string; interface: number }[];
      if (version.startsWith('0.')) assert.equal(ips[0]!.version, '4');
      else assert.equal(ips[0]!.version, undefined);
      assert.equal(ips[0]!.interface, 2);
      await runConflist(bridgeConf('vnet', '10.91.0.0/24', {}, version), r.opts('ctr1', c.name, { verb: 'DEL' }));
    });
  }

  it('chains with the reference portmap, tuning, bandwidth and firewall plugins', async () => {
    const r = await rigFor(bed());
    const list: Conflist = {
      cniVersion: '1.0.0',
      name: 'chain',
      plugins: [
        { type: 'strand-bridge', bridge: 'br-chain', isGateway: true, isDefaultGateway: true, ipMasq: true, ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.92.0.0/24' }]] } },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' } },
        { type: 'bandwidth', ingressRate: 100000000, ingressBurst: 1000000, egressRate: 100000000, egressBurst: 1000000 },
        { type: 'firewall' },
      ],
    };
    const c = bed().netns('c');
    const added = await addTo(list, r.opts('ctr1', c.name, { capabilityArgs: { portMappings: [{ hostPort: 18090, containerPort: 7000, protocol: 'tcp' }] } }));
    const ip = added.result.ips![0]!.address.split('/')[0]!;
    await serve(bed(), c.name, 'tcp', 7000, 'ctr');
    assert.equal(await answer(() => ask(r.world.outside.name, 'tcp', HOST_OUT, 18090)), `ctr ${OUTSIDE}`, 'portmap forwards to the strand-bridge container');
    assert.equal(run('ip', ['netns', 'exec', c.name, 'cat', '/proc/sys/net/ipv4/conf/eth0/arp_notify']).stdout.trim(), '1', 'tuning applied');
    assert.match(run('tc', ['-n', r.world.host.name, 'qdisc', 'show', 'dev', added.result.interfaces![1]!.name]).stdout, /tbf/, 'bandwidth shaped the host veth');
    assert.match(run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save']).stdout, new RegExp(`CNI-FORWARD.*${ip.replace(/\./g, '\\.')}`), 'firewall admitted the address');
    // The reference portmap v1.1.1 fails CHECK on IPv4-only pods ("could not check ipv6 dnat"), so CHECK
    // runs through strand-bridge alone, on the chain's cached result.
    await runConflist({ ...list, plugins: [list.plugins[0]!] }, r.opts('ctr1', c.name, { verb: 'CHECK' }));
    await runConflist(list, r.opts('ctr1', c.name, { verb: 'DEL', capabilityArgs: { portMappings: [{ hostPort: 18090, containerPort: 7000, protocol: 'tcp' }] } }));
    assert.doesNotMatch(run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save']).stdout, /18090/);
    assert.equal(await ask(r.world.outside.name, 'tcp', HOST_OUT, 18090, 800), null);
  });

  it('publishes runtimeConfig.portMappings itself (containerd\'s capitalised keys too)', async () => {
    const r = await rigFor(bed());
    const list = bridgeConf('ports', '10.93.0.0/24', { capabilities: { portMappings: true } });
    const c = bed().netns('c');
    const mappings = [{ HostPort: 18091, ContainerPort: 7000, Protocol: 'tcp' }];
    await addTo(list, r.opts('ctr1', c.name, { capabilityArgs: { portMappings: mappings } }));
    await serve(bed(), c.name, 'tcp', 7000, 'ctr');
    assert.equal(await answer(() => ask(r.world.outside.name, 'tcp', HOST_OUT, 18091)), `ctr ${OUTSIDE}`);
    assert.match((await answer(() => ask(r.world.host.name, 'tcp', '127.0.0.1', 18091))) ?? '', /^ctr /);
    await runConflist(list, r.opts('ctr1', c.name, { verb: 'DEL', capabilityArgs: { portMappings: mappings } }));
    assert.doesNotMatch(run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save']).stdout, /18091/);
  });

  it('32 ADDs at once get 32 distinct addresses; DEL of all leaves no veth', async () => {
    const r = await rigFor(bed());
    const list = bridgeConf('many', '10.94.0.0/24');
    const ctrs = Array.from({ length: 32 }, () => bed().netns('m'));
    const results = await Promise.all(ctrs.map((c, i) => addTo(list, r.opts(`ctr${i}`, c.name))));
    const addrs = results.map((x) => x.result.ips![0]!.address);
    assert.equal(new Set(addrs).size, 32);
    await Promise.all(ctrs.map((c, i) => runConflist(list, r.opts(`ctr${i}`, c.name, { verb: 'DEL' }))));
    // With the last attachment the network goes: no veth, and the bridge strand made is gone too.
    const left = (): string[] => ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).map((l) => l.ifname).filter((n) => n.startsWith('svcni') || n === 'br-many');
    await waitFor('the veths and the bridge to go', () => left().length === 0, 5000);
    assert.deepEqual(left(), []);
  });

  it('the network\'s bridge and rules go with its last attachment; a bridge that was there before stays', async () => {
    const r = await rigFor(bed());
    const list = bridgeConf('life', '10.97.0.0/24');
    const [c1, c2] = [bed().netns('c'), bed().netns('c')];
    await addTo(list, r.opts('ctr1', c1.name));
    // The second ADD changes a setting: the network is made again over the bridge strand made, which stays strand's.
    await addTo({ ...list, plugins: [{ ...list.plugins[0]!, ipMasq: false }] }, r.opts('ctr2', c2.name));
    const rules = (): string => run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save']).stdout;
    const links = (): string[] => ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).map((l) => l.ifname);
    assert.match(rules(), /br-life/);
    await runConflist(list, r.opts('ctr1', c1.name, { verb: 'DEL' }));
    assert.ok(links().includes('br-life'), 'the bridge stays while an attachment is left');
    assert.match(rules(), /br-life/);
    await runConflist(list, r.opts('ctr2', c2.name, { verb: 'DEL' }));
    assert.ok(!links().includes('br-life'), 'the bridge goes with the last attachment');
    assert.doesNotMatch(rules(), /br-life/);

    // A bridge the host had before: its rules go, the bridge stays as it was found.
    run('ip', ['-n', r.world.host.name, 'link', 'add', 'br-pre', 'type', 'bridge']);
    const pre: Conflist = { ...bridgeConf('pre', '10.98.0.0/24'), plugins: [{ ...bridgeConf('pre', '10.98.0.0/24').plugins[0]!, bridge: 'br-pre' }] };
    await addTo(pre, r.opts('ctr3', c1.name));
    await runConflist(pre, r.opts('ctr3', c1.name, { verb: 'DEL' }));
    assert.ok(links().includes('br-pre'));
    assert.doesNotMatch(rules(), /br-pre/);
  });

  if (daemon) it('the daemon keeps an unused network for --cni-linger, then removes it; an ADD meanwhile finds it in place', async () => {
    const world = new World(bed());
    const { path } = await pluginPath(bed(), world.host.name, { daemon: true, daemonArgs: ['--cni-linger', '1.5'] });
    const cacheDir = bed().tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-cache-')));
    const opts = (containerId: string, netns: string, verb: RunOptions['verb']): RunOptions => ({ verb, containerId, netns: `/run/netns/${netns}`, ifName: 'eth0', path, cacheDir });
    const list = bridgeConf('linger', '10.96.9.0/24');
    const links = (): string[] => ipJson<{ ifname: string }>(['link', 'show'], world.host.name).map((l) => l.ifname);
    const [c1, c2] = [bed().netns('c'), bed().netns('c')];
    await runConflist(list, opts('ctr1', c1.name, 'ADD'));
    const index = (): number => ipJson<{ ifindex: number }>(['link', 'show', 'dev', 'br-linger'], world.host.name)[0]!.ifindex;
    const made = index();
    await runConflist(list, opts('ctr1', c1.name, 'DEL'));
    assert.ok(links().includes('br-linger'), 'the bridge lingers after the last DEL');
    await runConflist(list, opts('ctr2', c2.name, 'ADD'));
    assert.equal(index(), made, 'an ADD within the linger uses the same bridge');
    await runConflist(list, opts('ctr2', c2.name, 'DEL'));
    for (let i = 0; i < 50 && links().includes('br-linger'); i++) await new Promise((res) => setTimeout(res, 100));
    assert.ok(!links().includes('br-linger'), 'the bridge goes once the linger has passed');
    assert.doesNotMatch(run('ip', ['netns', 'exec', world.host.name, 'iptables-save']).stdout, /br-linger/);
  });

  it('an attachment an older strand made (kernel state, no records) is checked and DELed as before', async () => {
    const r = await rigFor(bed());
    const list = bridgeConf('legacy', '10.99.0.0/24', { capabilities: { portMappings: true } });
    const c = bed().netns('c');
    const mappings = [{ hostPort: 18093, containerPort: 7000, protocol: 'tcp' }];
    const added = await addTo(list, r.opts('ctr1', c.name, { capabilityArgs: { portMappings: mappings } }));
    // The previous version kept no records of CNI networks and attachments: take them away, leave the kernel as it is.
    const store = await openStore(r.store);
    try {
      const records = (await store.list('core/')).filter((kv) => /\/(cni-networks|endpoints|by-network|ports)\//.test(kv.key));
      assert.ok(records.length >= 3, 'ADD kept records of the network, the attachment and its port');
      for (const kv of records) await store.delete(kv.key);
    } finally {
      await store.close();
    }
    const hostVeth = added.result.interfaces![1]!.name;
    await runConflist(list, r.opts('ctr1', c.name, { verb: 'CHECK', capabilityArgs: { portMappings: mappings } }));
    await runConflist(list, r.opts('ctr1', c.name, { verb: 'DEL', capabilityArgs: { portMappings: mappings } }));
    assert.ok(!ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).some((l) => l.ifname === hostVeth));
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], c.name).map((l) => l.ifname), ['lo']);
    assert.doesNotMatch(run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save']).stdout, /18093/);
  });

  it('GC removes the veths and addresses of attachments that are no longer valid', async () => {
    const r = await rigFor(bed());
    const list = bridgeConf('gcnet', '10.95.0.0/24');
    const cs = [bed().netns('g'), bed().netns('g'), bed().netns('g')];
    const adds = [];
    for (const [i, c] of cs.entries()) adds.push(await addTo(list, r.opts(`ctr${i}`, c.name)));
    // The runtime lost track of ctr1 and ctr2 (no DEL ever came): GC with only ctr0 valid.
    run('rm', ['-f', join(r.cacheDir, 'results', 'gcnet-ctr1-eth0'), join(r.cacheDir, 'results', 'gcnet-ctr2-eth0')]);
    await runConflist(list, { ...r.opts('', ''), verb: 'GC', validAttachments: [{ containerId: 'ctr0', ifName: 'eth0' }] });
    // A daemon removes veths on a worker thread, after its answer.
    const ports = (): string[] => ipJson<{ ifname: string }>(['link', 'show', 'master', 'br-gcnet'], r.world.host.name).map((l) => l.ifname);
    await waitFor('the stale veths to go', () => ports().length === 1, 5000);
    assert.deepEqual(ports(), [adds[0]!.result.interfaces![1]!.name]);
    // ctr1's address is free again.
    const ip1 = adds[1]!.result.ips![0]!.address.split('/')[0]!;
    const c = bed().netns('g');
    const re = await addTo(list, r.opts('ctr9', c.name, { cniArgs: `IgnoreUnknown=1;IP=${ip1}` }));
    assert.equal(re.result.ips![0]!.address.split('/')[0], ip1);
  });

  it('refuses bad input with the right code, changing nothing', async () => {
    const r = await rigFor(bed());
    const c = bed().netns('c');
    const expectCode = (list: Conflist, opts: RunOptions, code: number, pattern: RegExp) => expectCniError(runConflist(list, opts), code, pattern);
    await expectCode(bridgeConf('bad', '10.96.0.0/24', { mtu: 'big' }), r.opts('ctr1', c.name), 7, /"mtu"/);
    await expectCode(bridgeConf('bad', '10.96.0.0/24', { bridge: 'a-bridge-name-too-long' }), r.opts('ctr1', c.name), 7, /"bridge"/);
    await expectCode(bridgeConf('bad', '10.96.0.0/24', { hairpinMode: true, promiscMode: true }), r.opts('ctr1', c.name), 7, /hairpinMode/);
    await expectCode(bridgeConf('bad', '10.96.0.0/24'), { ...r.opts('ctr1', c.name), netns: '/etc/hostname' }, 4, /not a network namespace/);
    await expectCode(bridgeConf('bad', '10.96.0.300/24'), r.opts('ctr1', c.name), 7, /10\.96\.0\.300/);
    run('ip', ['-n', c.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
    await expectCode(bridgeConf('bad', '10.96.0.0/24'), r.opts('ctr1', c.name), 999, /eth0 already exists/);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show', 'type', 'bridge'], r.world.host.name).map((l) => l.ifname).filter((n) => n.startsWith('br-bad')), []);
    // Nothing was allocated: the first address is still the first one handed out.
    const c2 = bed().netns('c');
    const ok = await addTo(bridgeConf('bad', '10.96.0.0/24'), r.opts('ctr2', c2.name));
    assert.equal(ok.result.ips![0]!.address, '10.96.0.2/24');
  });
});
