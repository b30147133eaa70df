// strand as a real dockerd's network and IPAM driver: docker commands only,
// checked with the kernel's view (ip -j in the host namespace) and traffic.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TestBed, ipJson, run } from '../harness.js';
import { DockerEngine, ensureDockerInstalled, IMAGE } from './engine.js';

const FETCH = 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))';
const CREATE = ['network', 'create', '-d', 'strand-bridge', '--ipam-driver', 'strand-ipam'];

describe('docker engine with strand drivers', function () {
  this.timeout(180000);
  let bed: TestBed;
  let e: DockerEngine;

  before(async () => {
    ensureDockerInstalled();
    bed = new TestBed();
    e = new DockerEngine(bed);
    await e.start();
  });
  after(async () => {
    await bed?.dispose();
  });
  afterEach(() => {
    // Each test starts from an engine with no containers and no networks.
    const ids = e.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) e.docker(['rm', '-f', ...ids]);
    e.docker(['network', 'prune', '-f']);
  });

  function bridgeOf(networkId: string): { ifname: string; mtu: number; addr_info: { local: string; prefixlen: number }[] } | undefined {
    return ipJson<{ ifname: string; mtu: number; addr_info: { local: string; prefixlen: number }[] }>(['addr', 'show'], e.host).find((l) => l.ifname === `sb-${networkId.slice(0, 12)}`);
  }

  /** Ping from inside a container: true when answered. */
  function ping(from: string, ip: string): boolean {
    return e.exec(from, ['ping', '-c', '1', '-W', '2', ip], { allowFail: true }).status === 0;
  }

  it('creates a network with --subnet, --gateway, --ip-range, --aux-address and an MTU; containers on it reach each other', () => {
    e.docker([...CREATE, '--subnet', '10.61.0.0/16', '--gateway', '10.61.0.254', '--ip-range', '10.61.5.0/24', '--aux-address', 'host1=10.61.0.10', '-o', 'com.docker.network.driver.mtu=1400', 'n1']);
    const id = e.networkId('n1');
    const br = bridgeOf(id);
    assert.ok(br, 'strand made the bridge in the host namespace');
    assert.equal(br.mtu, 1400);
    assert.ok(br.addr_info.some((a) => a.local === '10.61.0.254' && a.prefixlen === 16));

    e.container('ca', ['--network', 'n1']);
    e.container('cb', ['--network', 'n1']);
    const [ipA, ipB] = [e.ipOn('ca', 'n1'), e.ipOn('cb', 'n1')];
    assert.match(ipA, /^10\.61\.5\.\d+$/, 'next free addresses come from the --ip-range');
    assert.match(ipB, /^10\.61\.5\.\d+$/);
    assert.ok(ping('ca', ipB));
    assert.ok(ping('cb', ipA));
    // Inside: the network's MTU (dockerd never sets it), strand's gateway as the default route, no docker_gwbridge.
    assert.equal(e.exec('ca', ['cat', '/sys/class/net/eth0/mtu']).stdout.trim(), '1400');
    assert.match(e.exec('ca', ['ip', 'route']).stdout, /default via 10\.61\.0\.254 dev eth0/);
    assert.doesNotMatch(e.exec('ca', ['ip', 'link']).stdout, /eth1/);
    assert.doesNotMatch(e.docker(['network', 'ls']).stdout, /docker_gwbridge/);
    // The aux address is never handed out.
    e.docker(['run', '-d', '--name', 'cc', '--network', 'n1', '--ip', '10.61.0.10', IMAGE, 'sleep', '60'], { allowFail: true });
    assert.doesNotMatch(e.docker(['ps', '--format', '{{.Names}}']).stdout, /^cc$/m);
  });

  it('honours docker run --ip and --mac-address', () => {
    e.docker([...CREATE, '--subnet', '10.64.0.0/24', 'n1']);
    e.container('ca', ['--network', 'n1', '--ip', '10.64.0.77', '--mac-address', '02:00:00:00:00:77']);
    const link = e.exec('ca', ['ip', 'addr', 'show', 'eth0']).stdout;
    assert.match(link, /inet 10\.64\.0\.77\/24/);
    assert.match(link, /link\/ether 02:00:00:00:00:77/);
    e.container('cb', ['--network', 'n1']);
    assert.ok(ping('cb', '10.64.0.77'));
  });

  it('publishes -p 127.0.0.1:18080:80 to the host namespace, and -P on a picked port', async () => {
    e.docker([...CREATE, '--subnet', '10.65.0.0/24', 'n1']);
    const web = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
    e.container('web', ['--network', 'n1', '--hostname', 'web1', '-p', '127.0.0.1:18080:80'], web);
    // Node as the client: busybox's static wget crashes outside a container here.
    const get = (port: number): string =>
      spawnSync('nsenter', [`--net=/run/netns/${e.host}`, process.execPath, '-e', FETCH, `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8', timeout: 5000 }).stdout;
    let got = '';
    for (let i = 0; i < 50 && got === ''; i++) {
      got = get(18080);
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got.trim(), 'web1', `nat:\n${run('ip', ['netns', 'exec', e.host, 'iptables-save', '-t', 'nat']).stdout}\nlogs: ${e.docker(['logs', 'web'], { allowFail: true }).stderr}\nstrand: ${e.strandOutput}`);

    e.container('web2', ['--network', 'n1', '--hostname', 'web2', '-P', '--expose', '80'], web);
    const ip2 = e.ipOn('web2', 'n1');
    // The kernel's own record of the publication: a DNAT rule to the container.
    const nat = run('ip', ['netns', 'exec', e.host, 'iptables-save', '-t', 'nat']).stdout;
    const rule = nat.split('\n').find((l) => l.includes(`--to-destination ${ip2}:80`));
    assert.ok(rule, `a DNAT rule for ${ip2}:80 in:\n${nat}`);
    const port = Number(/--dport (\d+)/.exec(rule)![1]);
    assert.ok(port >= 49153 && port <= 60999, `dynamic port ${port}`);
    got = '';
    for (let i = 0; i < 50 && got === ''; i++) {
      got = get(port);
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got.trim(), 'web2');
    // Stopping the container unpublishes.
    e.docker(['rm', '-f', 'web2']);
    assert.doesNotMatch(run('ip', ['netns', 'exec', e.host, 'iptables-save', '-t', 'nat']).stdout, new RegExp(`--to-destination ${ip2.replace(/\./g, '\\.')}:80`));
  });

  it('connects and disconnects a running container; two strand networks stay apart', () => {
    e.docker([...CREATE, '--subnet', '10.66.0.0/24', 'n1']);
    e.docker([...CREATE, '--subnet', '10.67.0.0/24', 'n2']);
    e.container('ca', ['--network', 'n1']);
    e.container('cc', ['--network', 'n2']);
    const ipA1 = e.ipOn('ca', 'n1');
    assert.ok(!ping('cc', ipA1), 'n2 cannot reach n1');
    e.docker(['network', 'connect', 'n2', 'ca']);
    const ipA2 = e.ipOn('ca', 'n2');
    assert.match(e.exec('ca', ['ip', 'addr', 'show', 'eth1']).stdout, new RegExp(`inet ${ipA2.replace(/\./g, '\\.')}/24`));
    assert.ok(ping('cc', ipA2));
    assert.ok(ping('ca', e.ipOn('cc', 'n2')));
    const n2 = e.networkId('n2');
    assert.equal(ipJson(['link', 'show', 'master', `sb-${n2.slice(0, 12)}`], e.host).length, 2);
    e.docker(['network', 'disconnect', 'n2', 'ca']);
    assert.equal(e.exec('ca', ['ip', 'link', 'show', 'eth1'], { allowFail: true }).status === 0, false);
    assert.equal(ipJson(['link', 'show', 'master', `sb-${n2.slice(0, 12)}`], e.host).length, 1, 'the veth went with the endpoint');
    assert.ok(!ping('cc', ipA2));
    assert.ok(ping('ca', e.ipOn('ca', 'n1')));
  });

  it('removes a network only without endpoints, and then everything of it', () => {
    e.docker([...CREATE, '--subnet', '10.68.0.0/24', 'n1']);
    const id = e.networkId('n1');
    e.container('ca', ['--network', 'n1']);
    const busy = e.docker(['network', 'rm', 'n1'], { allowFail: true });
    assert.notEqual(busy.status, 0);
    assert.match(busy.stderr, /active endpoints/);
    assert.ok(bridgeOf(id));
    e.docker(['rm', '-f', 'ca']);
    e.docker(['network', 'rm', 'n1']);
    assert.equal(bridgeOf(id), undefined);
    assert.doesNotMatch(e.strand(['network', 'ls']).stdout, new RegExp(id.slice(0, 12)));
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show', 'type', 'veth'], e.host).filter((l) => l.ifname.startsWith('sv') || l.ifname.startsWith('st')), []);
    // The pool went back: the same subnet can be had again.
    e.docker([...CREATE, '--subnet', '10.68.0.0/24', 'n1']);
  });

  it('refuses bad options and overlapping subnets with a clear error, leaving nothing behind', () => {
    e.docker([...CREATE, '--subnet', '10.69.0.0/24', 'n1']);
    const cases: [string[], RegExp][] = [
      [['-o', 'foo=bar'], /unknown option "foo" for the bridge driver/],
      [['-o', 'com.docker.network.driver.mtu=huge'], /invalid MTU "huge"/],
      [['-o', 'com.docker.network.bridge.enable_icc=maybe'], /invalid value "maybe".*true or false/],
    ];
    const before = e.strand(['network', 'ls']).stdout;
    for (const [opts, message] of cases) {
      const r = e.docker([...CREATE, '--subnet', '10.70.0.0/24', ...opts, 'bad'], { allowFail: true });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
    }
    const overlap = e.docker([...CREATE, '--subnet', '10.69.0.128/25', 'bad'], { allowFail: true });
    assert.notEqual(overlap.status, 0);
    assert.match(overlap.stderr, /overlaps/);
    assert.doesNotMatch(e.docker(['network', 'ls']).stdout, /\bbad\b/);
    assert.equal(e.strand(['network', 'ls']).stdout, before);
    // The refused subnet was released each time.
    e.docker([...CREATE, '--subnet', '10.70.0.0/24', 'good']);
  });

  it('keeps networks, endpoints and published ports across a strand daemon restart', async () => {
    e.docker([...CREATE, '--subnet', '10.71.0.0/24', 'n1']);
    e.container('ca', ['--network', 'n1']);
    e.container('cb', ['--network', 'n1']);
    await e.stopStrand();
    await e.startStrand();
    assert.ok(ping('ca', e.ipOn('cb', 'n1')));
    // The restarted daemon still answers for the network dockerd will never create again.
    e.container('cc', ['--network', 'n1']);
    assert.ok(ping('cc', e.ipOn('ca', 'n1')));
    e.docker(['rm', '-f', 'ca', 'cb', 'cc']);
    e.docker(['network', 'rm', 'n1']);
  });

  it('keeps working across a dockerd restart: stale endpoints cleaned, containers with a restart policy rejoin', async () => {
    e.docker([...CREATE, '--subnet', '10.72.0.0/24', 'n1']);
    const id = e.networkId('n1');
    e.container('ca', ['--network', 'n1', '--restart', 'always']);
    e.container('cb', ['--network', 'n1', '--restart', 'always']);
    await e.stopDockerd();
    await e.startDockerd();
    for (let i = 0; i < 100 && e.docker(['ps', '-q']).stdout.trim().split('\n').filter(Boolean).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(ping('ca', e.ipOn('cb', 'n1')));
    // Old endpoints went: exactly the two live veths are on the bridge.
    assert.equal(ipJson(['link', 'show', 'master', `sb-${id.slice(0, 12)}`], e.host).length, 2);
  });
});
