// strand-overlay across Docker engines: three host namespaces on one
// underlay with etcd, each with its own strand daemon (overlay agent +
// plugins) and its own dockerd. Each engine creates the network itself;
// strand makes them one cluster network. Checked with docker commands,
// traffic between containers of different engines, and the kernel's FDB.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { TestBed, ipJson } from '../../../test/support/harness.js';
import { waitFor } from '../../../test/support/cluster.js';
import { EngineCluster, type ClusterHost } from '../../../test/support/docker-cluster.js';
import { ensureDockerInstalled } from '../../../test/support/docker-engine.js';

const CREATE = ['network', 'create', '-d', 'strand-overlay', '--ipam-driver', 'strand-ipam'];
const BIG = 2 * 1024 * 1024;
/** An HTTP server with its hostname and a 2 MB file: more than a few full-size segments, so a wrong MTU shows. */
const WEB = ['sh', '-c', `mkdir -p /www && hostname > /www/index.html && dd if=/dev/urandom of=/www/big bs=1024 count=${BIG / 1024} 2>/dev/null && exec httpd -f -p 80 -h /www`];

interface StrandNetwork {
  Id: string;
  Name: string;
  Scope: string;
  Driver_State: { vni: string };
}
type Listed = { ID: string; Name: string; Scope: string };

describe('docker engines on three hosts share strand-overlay networks', function () {
  this.timeout(240000);
  let bed: TestBed;
  let c: EngineCluster;
  let hosts: ClusterHost[];

  before(async () => {
    ensureDockerInstalled();
    bed = new TestBed();
    // A short grace for the host that never comes back (last test); a daemon restart is far quicker than lease + grace.
    c = await EngineCluster.start(bed, 3, ['--dead-host-grace', '8']);
    hosts = c.hosts;
  });
  after(async () => {
    await bed?.dispose();
  });
  afterEach(() => {
    for (const { engine } of hosts ?? []) {
      const ids = engine.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      if (ids.length) engine.docker(['rm', '-f', ...ids]);
      engine.docker(['network', 'prune', '-f']);
    }
  });

  const strandNetworks = (h: ClusterHost): Listed[] => {
    const r = h.engine.strand(['network', 'ls', '--format', 'json']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed[];
  };
  const inspect = (h: ClusterHost, name: string): StrandNetwork => JSON.parse(h.engine.strand(['network', 'inspect', name]).stdout)[0] as StrandNetwork;
  const ping = (h: ClusterHost, from: string, ip: string): boolean => h.engine.exec(from, ['ping', '-c', '1', '-W', '2', ip], { allowFail: true }).status === 0;
  const macOf = (h: ClusterHost, container: string): string => h.engine.exec(container, ['cat', '/sys/class/net/eth0/address']).stdout.trim();
  /** A GET from inside a container, retried while the server starts. */
  async function fetch(h: ClusterHost, from: string, url: string, pipe = ''): Promise<string> {
    for (let i = 0; ; i++) {
      const r = h.engine.exec(from, ['sh', '-c', `wget -q -O - ${url}${pipe}`], { allowFail: true });
      if (r.status === 0 && r.stdout.trim() !== '') return r.stdout.trim();
      if (i >= 50) throw new Error(`GET ${url} from ${from} failed: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  /** A docker command on a host's engine, not waiting: for hosts acting at the same moment. */
  const dockerAsync = (h: ClusterHost, args: string[]): Promise<{ status: number; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn('docker', ['-H', `unix://${h.engine.socket}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.once('exit', (code) => resolve({ status: code ?? -1, stderr }));
    });
  /** GET from a host's own namespace (Node as the client: busybox's static wget crashes outside a container). */
  async function fromHost(h: ClusterHost, port: number): Promise<string> {
    const code = 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))';
    for (let i = 0; i < 50; i++) {
      const r = spawnSync('nsenter', [`--net=/run/netns/${h.netns}`, process.execPath, '-e', code, `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8', timeout: 5000 });
      if (r.stdout.trim()) return r.stdout.trim();
      await new Promise((res) => setTimeout(res, 100));
    }
    return '';
  }
  const devices = (h: ClusterHost, clusterId: string): string[] =>
    ipJson<{ ifname: string }>(['link', 'show'], h.netns)
      .map((l) => l.ifname)
      .filter((n) => n === `vx-${clusterId.slice(0, 12)}` || n === `so-${clusterId.slice(0, 12)}`);

  it('joins the engines\' networks into one cluster network: one VNI, one address pool, traffic across hosts', async () => {
    const [a, b, h2] = hosts as [ClusterHost, ClusterHost, ClusterHost];
    for (const h of hosts) h.engine.docker([...CREATE, '--subnet', '10.93.0.0/24', 'ovl']);
    const engineIds = hosts.map((h) => h.engine.networkId('ovl'));
    assert.equal(new Set(engineIds).size, 3, 'each engine gave the network its own id');
    // strand has one global network, the same record from every host.
    const views = hosts.map((h) => strandNetworks(h).filter((n) => n.Scope === 'global'));
    for (const v of views) assert.equal(v.length, 1, JSON.stringify(v));
    assert.equal(views[0]![0]!.Name, 'overlay-10.93.0.0-24');
    assert.equal(new Set(views.map((v) => v[0]!.ID)).size, 1);
    const net = inspect(a, views[0]![0]!.Name);
    assert.ok(Number(net.Driver_State.vni) >= 4096);

    a.engine.container('web', ['--network', 'ovl', '--hostname', 'web-a', '-p', '127.0.0.1:18100:80'], WEB);
    b.engine.container('cb', ['--network', 'ovl']);
    h2.engine.container('cc', ['--network', 'ovl']);
    const ips = [a.engine.ipOn('web', 'ovl'), b.engine.ipOn('cb', 'ovl'), h2.engine.ipOn('cc', 'ovl')];
    assert.equal(new Set(ips).size, 3, `no address handed out twice across hosts: ${ips.join(' ')}`);
    for (const ip of ips) assert.match(ip, /^10\.93\.0\.\d+$/);
    const [ipA, ipB, ipC] = ips as [string, string, string];

    // The agents program peers from the endpoints strand published: each host's FDB has the others' MACs.
    const dev = `vx-${net.Id.slice(0, 12)}`;
    const macs = new Map([[a, macOf(a, 'web')], [b, macOf(b, 'cb')], [h2, macOf(h2, 'cc')]]);
    for (const h of hosts) {
      const fdb = await waitFor(`${h.id}'s FDB to hold the other hosts' containers`, () => {
        const f = EngineCluster.fdb(h.netns, dev);
        return f.size === 2 ? f : undefined;
      });
      for (const other of hosts) if (other !== h) assert.equal(fdb.get(macs.get(other)!), other.ip, `${h.id} sends ${other.id}'s container to ${other.ip}`);
    }

    assert.ok(ping(b, 'cb', ipA));
    assert.ok(ping(h2, 'cc', ipB));
    assert.ok(ping(a, 'web', ipC));
    // TCP: the hostname, then 2 MB whole (the overlay's MTU is the underlay's minus VXLAN's 50 bytes).
    assert.equal(await fetch(b, 'cb', `http://${ipA}/index.html`), 'web-a');
    assert.equal(await fetch(h2, 'cc', `http://${ipA}/big`, ' | wc -c'), String(BIG));
    assert.equal(b.engine.exec('cb', ['cat', '/sys/class/net/eth0/mtu']).stdout.trim(), '1450');
    // Cross-CPU steering survives dockerd moving and renaming the container's end: its first queue has senders.
    if (availableParallelism() > 1) assert.match(b.engine.exec('cb', ['cat', '/sys/class/net/eth0/queues/tx-0/xps_cpus']).stdout, /[1-9a-f]/);
    // -p works on the overlay too: published on the container's own host.
    assert.equal(await fromHost(a, 18100), 'web-a');

    // strand's own sandboxes join the same network by its name, and talk with the engines' containers.
    const started = a.engine.strand(['run', '-d', '--name', 'sa', '--network', net.Name, '--', 'sleep', '60']);
    assert.equal(started.status, 0, started.stderr);
    try {
      const ps = JSON.parse(a.engine.strand(['ps', '--format', 'json']).stdout) as { name: string; addresses: string[] }[];
      const ipS = ps.find((x) => x.name === 'sa')!.addresses.find((x) => !x.includes(':'))!.split('/')[0]!;
      assert.ok(!ips.includes(ipS));
      assert.ok(ping(b, 'cb', ipS));
    } finally {
      a.engine.strand(['rm', '-f', 'sa']);
    }

    // A restarted strand daemon still knows which cluster network its engine's network is.
    await b.engine.stopStrand();
    await b.engine.startStrand();
    b.engine.container('cb2', ['--network', 'ovl']);
    const ipB2 = b.engine.ipOn('cb2', 'ovl');
    assert.ok(!ips.includes(ipB2));
    assert.ok(ping(b, 'cb2', ipC));
    assert.ok(ping(h2, 'cc', ipB2));
  });

  it('keeps the cluster network while any engine uses it: docker network rm on one host leaves the others working', async () => {
    const [a, b, h2] = hosts as [ClusterHost, ClusterHost, ClusterHost];
    for (const h of hosts) h.engine.docker([...CREATE, '--subnet', '10.94.0.0/24', '-o', 'network=shared', 'ovl']);
    const id = inspect(a, 'shared').Id;
    a.engine.container('ca', ['--network', 'ovl']);
    b.engine.container('cb', ['--network', 'ovl']);
    h2.engine.container('cc', ['--network', 'ovl']);
    const macB = macOf(b, 'cb');
    const ipA = a.engine.ipOn('ca', 'ovl');
    assert.ok(ping(b, 'cb', ipA));
    assert.deepEqual(devices(b, id).sort(), [`so-${id.slice(0, 12)}`, `vx-${id.slice(0, 12)}`]);

    b.engine.docker(['rm', '-f', 'cb']);
    b.engine.docker(['network', 'rm', 'ovl']);
    assert.deepEqual(devices(b, id), [], "host1's bridge and vxlan device went with its engine's network");
    assert.equal(inspect(a, 'shared').Id, id, 'the cluster network stays for the others');
    // Its VNI stays claimed: a new overlay network gets another one.
    b.engine.docker([...CREATE, '--subnet', '10.98.0.0/24', 'other']);
    assert.notEqual(inspect(b, 'overlay-10.98.0.0-24').Driver_State.vni, inspect(a, 'shared').Driver_State.vni);
    b.engine.docker(['network', 'rm', 'other']);
    await waitFor("host0 to forget host1's container", () => !EngineCluster.fdb(a.netns, `vx-${id.slice(0, 12)}`).has(macB));
    assert.ok(ping(h2, 'cc', ipA));
    h2.engine.container('cc2', ['--network', 'ovl']);
    assert.ok(ping(h2, 'cc2', ipA));
    // host1 can come back to it.
    b.engine.docker([...CREATE, '--subnet', '10.94.0.0/24', '-o', 'network=shared', 'ovl']);
    b.engine.container('cb2', ['--network', 'ovl']);
    assert.ok(ping(b, 'cb2', ipA));

    // The last engine out removes it, cluster-wide.
    for (const h of hosts) {
      h.engine.docker(['rm', '-f', ...h.engine.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean)]);
      h.engine.docker(['network', 'rm', 'ovl']);
    }
    for (const h of hosts) {
      assert.deepEqual(strandNetworks(h).filter((n) => n.Scope === 'global'), []);
      assert.deepEqual(devices(h, id), []);
    }
    // Its pool and VNI went back: the subnet can be had again.
    a.engine.docker([...CREATE, '--subnet', '10.94.0.0/24', 'again']);
  });

  it('makes one network when every host creates it at the same moment, dual-stack', async () => {
    const args = [...CREATE, '--ipv6', '--subnet', '10.99.0.0/24', '--subnet', 'fd00:99::/64', 'ovl'];
    const results = await Promise.all(hosts.map((h) => dockerAsync(h, args)));
    results.forEach((r, i) => assert.equal(r.status, 0, `host${i}: ${r.stderr}`));
    const global = hosts.map((h) => strandNetworks(h).filter((n) => n.Scope === 'global'));
    for (const g of global) assert.deepEqual(g.map((n) => n.Name), ['overlay-10.99.0.0-24_fd00-99---64']);
    const [a, b] = hosts as [ClusterHost, ClusterHost];
    a.engine.container('ca', ['--network', 'ovl']);
    b.engine.container('cb', ['--network', 'ovl']);
    const v6 = (h: ClusterHost, ctr: string): string => h.engine.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "ovl").GlobalIPv6Address}}', ctr]).stdout.trim();
    const [a6, b6] = [v6(a, 'ca'), v6(b, 'cb')];
    assert.match(a6, /^fd00:99::[0-9a-f]+$/);
    assert.notEqual(a6, b6, 'one IPv6 pool for the cluster too');
    assert.ok(ping(b, 'cb', a.engine.ipOn('ca', 'ovl')));
    // Duplicate address detection may hold a new address back for a moment.
    let ok = false;
    for (let i = 0; i < 30 && !ok; i++) {
      ok = b.engine.exec('cb', ['ping6', '-c', '1', '-W', '2', a6], { allowFail: true }).status === 0;
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(ok, 'cb reaches ca over IPv6 across hosts');
  });

  it("keeps a host's containers on the cluster network across a dockerd restart", async () => {
    const [a, b] = hosts as [ClusterHost, ClusterHost];
    for (const h of [a, b]) h.engine.docker([...CREATE, '--subnet', '10.92.0.0/24', 'ovl']);
    const id = inspect(a, 'overlay-10.92.0.0-24').Id;
    a.engine.container('ca', ['--network', 'ovl']);
    b.engine.container('cb', ['--network', 'ovl', '--restart', 'always']);
    const ipA = a.engine.ipOn('ca', 'ovl');
    const oldMac = macOf(b, 'cb');
    assert.ok(ping(b, 'cb', ipA));
    await b.engine.stopDockerd();
    await b.engine.startDockerd();
    await waitFor('cb to run again', () => b.engine.docker(['ps', '-q', '-f', 'name=cb']).stdout.trim() !== '');
    // dockerd dropped the old endpoint and made a new one: host0 learns the new one and forgets the old.
    const newMac = macOf(b, 'cb');
    const dev = `vx-${id.slice(0, 12)}`;
    await waitFor("host0's FDB to follow cb's new endpoint", () => {
      const f = EngineCluster.fdb(a.netns, dev);
      return f.get(newMac) === b.ip && (newMac === oldMac || !f.has(oldMac));
    });
    assert.ok(ping(b, 'cb', ipA));
    assert.ok(ping(a, 'ca', b.engine.ipOn('cb', 'ovl')));
  });

  it('refuses a host that asks for a known cluster network with another subnet, and other bad requests, with a clear error', () => {
    const [a, b] = hosts as [ClusterHost, ClusterHost];
    a.engine.docker([...CREATE, '--subnet', '10.95.0.0/24', '-o', 'network=web', 'web']);
    const before = b.engine.strand(['network', 'ls']).stdout;
    const cases: [string[], RegExp][] = [
      [[...CREATE, '--subnet', '10.96.0.0/24', '-o', 'network=web', 'web'], /strand-overlay network "web" already exists in the cluster \(created on host host0\) with subnet 10\.95\.0\.0\/24, not 10\.96\.0\.0\/24: use the same --subnet on every host/],
      [[...CREATE, '--subnet', '10.95.0.0/24', '--gateway', '10.95.0.9', '-o', 'network=web', 'web'], /gateway 10\.95\.0\.1 on 10\.95\.0\.0\/24, not 10\.95\.0\.9/],
      [[...CREATE, '--subnet', '10.95.0.0/16', 'web'], /subnet 10\.95\.0\.0\/16 overlaps subnet 10\.95\.0\.0\/24 of cluster network "web"; to join it, create the network with --subnet 10\.95\.0\.0\/24 -o network=web/],
      [[...CREATE, 'web'], /needs an explicit IPv4 --subnet, the same on every host/],
      [['network', 'create', '-d', 'strand-overlay', '--subnet', '10.97.0.0/24', 'web'], /needs --ipam-driver strand-ipam/],
      [[...CREATE, '--subnet', '10.97.0.0/24', '-o', 'vni=x', 'web'], /invalid VNI "x"/],
    ];
    for (const [args, message] of cases) {
      const r = b.engine.docker(args, { allowFail: true });
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, message);
    }
    assert.doesNotMatch(b.engine.docker(['network', 'ls']).stdout, /\bweb\b/);
    assert.equal(b.engine.strand(['network', 'ls']).stdout, before, 'nothing half-made in strand');
    // Each refused pool went back: host1 can take the subnets now.
    b.engine.docker([...CREATE, '--subnet', '10.95.0.0/24', '-o', 'network=web', 'web']);
    b.engine.docker(['network', 'create', '-d', 'strand-bridge', '--ipam-driver', 'strand-ipam', '--subnet', '10.96.0.0/24', 'local96']);
  });

  it("leaves a cluster network to the engines: strand network rm refuses it while they use it; a host that never returns stops counting", async () => {
    const [a, b, h2] = hosts as [ClusterHost, ClusterHost, ClusterHost];
    for (const h of hosts) h.engine.docker([...CREATE, '--subnet', '10.99.0.0/24', '-o', 'network=engines', 'ovl']);
    const refusal = (): string => {
      const r = a.engine.strand(['network', 'rm', 'engines']);
      assert.notEqual(r.status, 0, 'strand network rm must refuse a network Docker engines use');
      return r.stderr;
    };
    assert.match(refusal(), /used by the Docker engines of host\(s\) host0, host1, host2: remove it there with "docker network rm"/);
    assert.equal(inspect(a, 'engines').Name, 'engines', 'the refused rm left the network');

    // host2's strand daemon goes for good: once its lease and the grace period have run out, it no longer counts.
    await h2.engine.stopStrand();
    try {
      await waitFor('host2 to be forgotten', () => /host\(s\) host0, host1:/.test(refusal()), 60000, 500);
      for (const h of [a, b]) h.engine.docker(['network', 'rm', 'ovl']);
      // The last remaining engine's rm removed it everywhere.
      assert.deepEqual(strandNetworks(a).filter((n) => n.Name === 'engines'), []);
    } finally {
      await h2.engine.startStrand();
    }
  });
});
