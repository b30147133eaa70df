// strand as a real dockerd's network and IPAM driver: docker commands only,
// checked with the kernel's view (ip -j in the host namespace) and traffic.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TestBed, ipJson, run } from '../../../test/support/harness.js';
import { OUTSIDE } from '../../../test/support/topology.js';
import { serve } from '../../../test/support/traffic.js';
import { DockerEngine, ensureDockerInstalled, IMAGE } from '../../../test/support/docker-engine.js';

const FETCH = 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))';
const CREATE = ['network', 'create', '-d', 'strand-bridge', '--ipam-driver', 'strand-ipam'];
const WEB = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];

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

  /** GET from the host namespace, retried while the server starts; '' when nothing answered. Node as the client: busybox's static wget crashes outside a container here. */
  async function getFromHost(port: number, tries = 50): Promise<string> {
    for (let i = 0; i < tries; i++) {
      const got = spawnSync('nsenter', [`--net=/run/netns/${e.host}`, process.execPath, '-e', FETCH, `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8', timeout: 5000 }).stdout;
      if (got) return got.trim();
      await new Promise((r) => setTimeout(r, 100));
    }
    return '';
  }

  const nat = (): string => run('ip', ['netns', 'exec', e.host, 'iptables-save', '-t', 'nat']).stdout;

  /** `ip -j -d link show DEV` inside a running container's network namespace. */
  function linkIn(container: string, dev: string): { ifname: string; linkinfo?: { info_kind: string; info_data?: { mode?: string } } } {
    const pid = e.docker(['inspect', '-f', '{{.State.Pid}}', container]).stdout.trim();
    return JSON.parse(run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', '-d', 'link', 'show', 'dev', dev]).stdout)[0];
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
    e.container('web', ['--network', 'n1', '--hostname', 'web1', '-p', '127.0.0.1:18080:80'], WEB);
    assert.equal(await getFromHost(18080), 'web1', `nat:\n${nat()}\nlogs: ${e.docker(['logs', 'web'], { allowFail: true }).stderr}\nstrand: ${e.strandOutput}`);

    e.container('web2', ['--network', 'n1', '--hostname', 'web2', '-P', '--expose', '80'], WEB);
    const ip2 = e.ipOn('web2', 'n1');
    // The kernel's own record of the publication: a DNAT rule to the container.
    const rules = nat();
    const rule = rules.split('\n').find((l) => l.includes(`--to-destination ${ip2}:80`));
    assert.ok(rule, `a DNAT rule for ${ip2}:80 in:\n${rules}`);
    const port = Number(/--dport (\d+)/.exec(rule)![1]);
    assert.ok(port >= 49153 && port <= 60999, `dynamic port ${port}`);
    assert.equal(await getFromHost(port), 'web2');
    // Stopping the container unpublishes.
    e.docker(['rm', '-f', 'web2']);
    assert.doesNotMatch(nat(), new RegExp(`--to-destination ${ip2.replace(/\./g, '\\.')}:80`));
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
    e.container('ca', ['--network', 'n1', '--hostname', 'web-a', '-p', '127.0.0.1:18090:80'], WEB);
    e.container('cb', ['--network', 'n1']);
    const ipA = e.ipOn('ca', 'n1');
    const dnatTo = (ip: string): string[] => nat().split('\n').filter((l) => l.includes('DNAT') && l.includes(`--to-destination ${ip}:`));
    assert.equal(await getFromHost(18090), 'web-a');
    await e.stopStrand();
    await e.startStrand();
    assert.ok(ping('ca', e.ipOn('cb', 'n1')));
    assert.equal(await getFromHost(18090), 'web-a', 'the published port still answers');
    assert.equal(dnatTo(ipA).length, 1, `one DNAT rule for ${ipA}, not restored twice:\n${nat()}`);
    // The restarted daemon still answers for the network dockerd will never create again, and publishes on it.
    e.container('cc', ['--network', 'n1', '--hostname', 'web-c', '-p', '127.0.0.1:18091:80'], WEB);
    const ipC = e.ipOn('cc', 'n1');
    assert.ok(ping('cc', ipA));
    assert.equal(await getFromHost(18091), 'web-c');
    // What was published before the restart is unpublished by the restarted daemon.
    e.docker(['rm', '-f', 'ca']);
    assert.deepEqual(dnatTo(ipA), [], `no DNAT left for ${ipA}:\n${nat()}`);
    assert.doesNotMatch(nat(), /--dport 18090\b/);
    assert.equal(await getFromHost(18090, 3), '');
    assert.equal(await getFromHost(18091), 'web-c');
    e.docker(['rm', '-f', 'cb', 'cc']);
    assert.deepEqual(dnatTo(ipC), []);
    assert.doesNotMatch(nat(), /--to-destination 10\.71\./);
    e.docker(['network', 'rm', 'n1']);
  });

  it('puts containers on the underlay with strand-macvlan -o parent=: their own addresses, no NAT, no ports', async () => {
    e.docker(['network', 'create', '-d', 'strand-macvlan', '--ipam-driver', 'strand-ipam', '--subnet', '203.0.113.0/24', '--gateway', OUTSIDE, '--ip-range', '203.0.113.128/25', '-o', 'parent=out0', 'lan']);
    e.container('ma', ['--network', 'lan']);
    e.container('mb', ['--network', 'lan']);
    const [ipA, ipB] = [e.ipOn('ma', 'lan'), e.ipOn('mb', 'lan')];
    assert.match(ipA, /^203\.0\.113\.(12[89]|1[3-9]\d|2\d\d)$/, 'from the --ip-range');
    const link = linkIn('ma', 'eth0');
    assert.equal(link.linkinfo?.info_kind, 'macvlan');
    assert.equal(link.linkinfo?.info_data?.mode, 'bridge');
    assert.match(e.exec('ma', ['ip', 'route']).stdout, new RegExp(`default via ${OUTSIDE.replace(/\./g, '\\.')} dev eth0`));
    assert.ok(ping('ma', ipB), 'bridge mode: siblings talk');
    assert.ok(ping('ma', OUTSIDE));
    // The underlay sees the container's own address, both ways.
    await serve(bed, e.world!.outside.name, 'tcp', 8000, 'out');
    assert.equal(e.exec('mb', ['sh', '-c', `nc -w 2 ${OUTSIDE} 8000 </dev/null`]).stdout.trim(), `out ${ipB}`);
    assert.equal(run('ip', ['netns', 'exec', e.world!.outside.name, 'ping', '-c', '1', '-W', '2', ipA], { allowFail: true }).status, 0);
    // Ports cannot be published on a macvlan network: said, not ignored.
    const published = e.docker(['run', '-d', '--name', 'mp', '--network', 'lan', '-p', '18095:80', IMAGE, 'sleep', '60'], { allowFail: true });
    assert.notEqual(published.status, 0);
    assert.match(published.stderr, /macvlan network: containers are reached at their own addresses, ports cannot be published/);
    const bad = e.docker(['network', 'create', '-d', 'strand-macvlan', '--ipam-driver', 'strand-ipam', '--subnet', '198.51.100.0/24', '-o', 'parent=nosuch0', 'bad'], { allowFail: true });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /parent interface "nosuch0" does not exist/);
    e.docker(['rm', '-f', 'ma', 'mb', 'mp']);
    assert.deepEqual(ipJson<{ ifname: string; linkinfo?: { info_kind: string } }>(['-d', 'link', 'show'], e.host).filter((l) => l.linkinfo?.info_kind === 'macvlan'), [], 'no macvlan left in the host namespace');
  });

  it('gives containers IPv6 addresses with --ipv6 --subnet fd..::/64, and they ping6 each other', async () => {
    e.docker([...CREATE, '--ipv6', '--subnet', 'fd00:73::/64', 'n6']);
    const id = e.networkId('n6');
    e.container('ca', ['--network', 'n6']);
    e.container('cb', ['--network', 'n6', '--ip6', 'fd00:73::77']);
    const v6 = (c: string): string => e.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "n6").GlobalIPv6Address}}', c]).stdout.trim();
    const [a6, b6] = [v6('ca'), v6('cb')];
    assert.match(a6, /^fd00:73::[0-9a-f]+$/);
    assert.equal(b6, 'fd00:73::77');
    assert.match(e.exec('cb', ['ip', '-6', 'addr', 'show', 'eth0']).stdout, /inet6 fd00:73::77\/64/);
    // IPv4 too: dockerd always asks for one, and strand-ipam picked a default pool.
    assert.match(e.ipOn('ca', 'n6'), /^\d+\.\d+\.\d+\.\d+$/);
    // The gateway is on strand's bridge in the host namespace, and is the default route inside.
    const br = ipJson<{ ifname: string; addr_info: { family: string; local: string }[] }>(['addr', 'show'], e.host).find((l) => l.ifname === `sb-${id.slice(0, 12)}`);
    const gw6 = br?.addr_info.find((a) => a.family === 'inet6' && a.local.startsWith('fd00:73::'))?.local;
    assert.ok(gw6, 'the bridge holds the IPv6 gateway');
    assert.match(e.exec('ca', ['ip', '-6', 'route']).stdout, new RegExp(`default via ${gw6}`));
    // Duplicate address detection may hold a new address back for a moment.
    let ok = false;
    for (let i = 0; i < 30 && !ok; i++) {
      ok = e.exec('ca', ['ping6', '-c', '1', '-W', '2', b6], { allowFail: true }).status === 0;
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(ok, 'ca reaches cb over IPv6');
    assert.equal(e.exec('cb', ['ping6', '-c', '1', '-W', '2', a6], { allowFail: true }).status, 0);
    assert.equal(e.exec('cb', ['ping6', '-c', '1', '-W', '2', gw6], { allowFail: true }).status, 0);
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
