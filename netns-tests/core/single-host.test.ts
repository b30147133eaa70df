// The strand command on one host, checked with real traffic between real
// namespaces and with the kernel's own view (ip -j, iptables-save).
import assert from 'node:assert/strict';
import { useTestBed, ipJson, run } from '../../test/support/harness.js';
import { answer, ask, serve } from '../../test/support/traffic.js';
import { HOST_OUT, OUTSIDE } from '../../test/support/topology.js';
import { StrandHost } from './strand-host.js';


describe('strand on one host', function () {
  this.timeout(120000);
  const bed = useTestBed();

  it('sandboxes on one network reach each other; the kernel shows the bridge, veths and addresses', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.50.0.0/24', '--gateway', '10.50.0.1', 'n1']);
    h.serverSandbox('a', 'n1', [7000]);
    h.serverSandbox('b', 'n1', [7000]);
    const [ipA, ipB] = [h.ipOf('a'), h.ipOf('b')];
    assert.match(ipA, /^10\.50\.0\.\d+$/);
    assert.equal(await answer(() => ask(h.netnsOf('b'), 'tcp', ipA, 7000)), `a ${ipB}`);
    assert.equal(await answer(() => ask(h.netnsOf('a'), 'tcp', ipB, 7000)), `b ${ipA}`);

    const bridge = ipJson<{ ifname: string; linkinfo?: { info_kind: string } }>(['-d', 'link', 'show', 'type', 'bridge'], h.name).find((l) => l.ifname.startsWith('sb-'));
    assert.ok(bridge, 'a strand bridge in the host namespace');
    const addrs = ipJson<{ addr_info: { local: string; prefixlen: number }[] }>(['addr', 'show', 'dev', bridge.ifname], h.name)[0]!.addr_info;
    assert.ok(addrs.some((a) => a.local === '10.50.0.1' && a.prefixlen === 24));
    const ports = ipJson<{ ifname: string; master?: string }>(['link', 'show', 'master', bridge.ifname], h.name);
    assert.equal(ports.length, 2);
    const inA = ipJson<{ ifname: string; addr_info: { local: string }[] }>(['addr', 'show', 'dev', 'eth0'], h.netnsOf('a'))[0]!;
    assert.ok(inA.addr_info.some((a) => a.local === ipA));
    const routes = ipJson<{ dst: string; gateway?: string }>(['route', 'show'], h.netnsOf('a'));
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.50.0.1'));
  });

  it('gives a sandbox its own hostname, /etc/hosts and /etc/resolv.conf', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.51.0.0/24', 'n1']);
    const out = h.strand(['run', '--network', 'n1', '--hostname', 'alpha', '--dns', '192.0.2.53', '--dns-search', 'example.test', '--add-host', 'db:10.51.0.99', '--', 'sh', '-c', 'hostname; cat /etc/hosts; cat /etc/resolv.conf']).stdout;
    assert.match(out, /^alpha\n/);
    assert.match(out, /10\.51\.0\.99\tdb/);
    assert.match(out, /10\.51\.0\.\d+\talpha/);
    assert.match(out, /nameserver 192\.0\.2\.53/);
    assert.match(out, /search example\.test/);
    // The host keeps its own.
    assert.notEqual(run('hostname', []).stdout.trim(), 'alpha');
    assert.doesNotMatch(run('cat', ['/etc/hosts']).stdout, /10\.51\.0\.99/);
  });

  it('reaches the outside through NAT: the outside sees the host address', async () => {
    const h = new StrandHost(bed());
    await serve(bed(), h.world.outside.name, 'tcp', 8000, 'out');
    h.strand(['network', 'create', '--subnet', '10.52.0.0/24', 'n1']);
    const got = h.strand(['run', '--network', 'n1', '--', process.execPath, '-e', CLIENT, OUTSIDE, '8000']).stdout.trim();
    assert.equal(got, `out ${HOST_OUT}`);
  });

  it('keeps two networks apart, and a sandbox on both reaches both', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.53.0.0/24', 'n1']);
    h.strand(['network', 'create', '--subnet', '10.54.0.0/24', 'n2']);
    h.serverSandbox('a', 'n1', [7000]);
    h.serverSandbox('b', 'n2', [7000]);
    const [ipA, ipB] = [h.ipOf('a'), h.ipOf('b')];
    assert.ok(await answer(() => ask(h.netnsOf('a'), 'tcp', ipA, 7000)));
    assert.ok(await answer(() => ask(h.netnsOf('b'), 'tcp', ipB, 7000)));
    assert.equal(await ask(h.netnsOf('a'), 'tcp', ipB, 7000, 1000), null, 'n1 must not reach n2');
    assert.equal(await ask(h.netnsOf('b'), 'tcp', ipA, 7000, 1000), null, 'n2 must not reach n1');

    h.serverSandbox('c', 'n1', [7001]);
    h.strand(['network', 'connect', 'n2', 'c']);
    const ifs = ipJson<{ ifname: string }>(['link', 'show'], h.netnsOf('c')).map((l) => l.ifname).sort();
    assert.deepEqual(ifs, ['eth0', 'eth1', 'lo']);
    assert.match((await ask(h.netnsOf('c'), 'tcp', ipA, 7000)) ?? '', /^a /);
    assert.match((await ask(h.netnsOf('c'), 'tcp', ipB, 7000)) ?? '', /^b /);
    h.strand(['network', 'disconnect', 'n2', 'c']);
    assert.equal(await ask(h.netnsOf('c'), 'tcp', ipB, 7000, 1000), null);
  });

  it('publishes TCP and UDP ports: from outside, from the host and 127.0.0.1, and by hairpin', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.55.0.0/24', 'n1']);
    h.serverSandbox('web', 'n1', [7000], [7001], ['-p', '8080:7000', '-p', '8081:7001/udp']);
    h.serverSandbox('peer', 'n1', [7002]);
    const out = h.world.outside.name;
    assert.equal(await answer(() => ask(out, 'tcp', HOST_OUT, 8080)), `web ${OUTSIDE}`, 'outside → published TCP keeps the client address');
    assert.equal(await answer(() => ask(out, 'udp', HOST_OUT, 8081)), `web ${OUTSIDE}`, 'outside → published UDP');
    assert.match((await answer(() => ask(h.name, 'tcp', '127.0.0.1', 8080))) ?? '', /^web /, 'host via 127.0.0.1');
    assert.match((await answer(() => ask(h.name, 'tcp', HOST_OUT, 8080))) ?? '', /^web /, 'host via its own address');
    assert.match((await answer(() => ask(h.netnsOf('peer'), 'tcp', HOST_OUT, 8080))) ?? '', /^web /, 'neighbour via the host address');
    assert.match((await answer(() => ask(h.netnsOf('web'), 'tcp', HOST_OUT, 8080))) ?? '', /^web /, 'hairpin to its own port');
    assert.deepEqual(h.ps().find((s) => s.name === 'web')!.ports.sort(), ['8080->7000/tcp', '8081->7001/udp']);

    h.strand(['rm', '-f', 'web']);
    assert.equal(await ask(out, 'tcp', HOST_OUT, 8080, 1000), null, 'gone with the sandbox');
    const rules = run('ip', ['netns', 'exec', h.name, 'iptables-save']).stdout;
    assert.doesNotMatch(rules, /8080|8081/);
  });

  it('publishes exposed ports on dynamic host ports with -P', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.56.0.0/24', 'n1']);
    h.serverSandbox('web', 'n1', [7000], [], ['-P', '--expose', '7000']);
    const [binding] = h.ps().find((s) => s.name === 'web')!.ports;
    const m = /^(\d+)->7000\/tcp$/.exec(binding ?? '');
    assert.ok(m, `a dynamic binding, got ${binding}`);
    const port = Number(m[1]);
    assert.ok(port >= 49153 && port <= 60999);
    assert.match((await answer(() => ask(h.world.outside.name, 'tcp', HOST_OUT, port))) ?? '', /^web /);
  });

  it('runs in the host namespace, in none, and in another sandbox\'s namespace', async () => {
    const h = new StrandHost(bed());
    const hostLinks = h.strand(['run', '--network', 'host', '--', 'ip', '-o', 'link', 'show']).stdout;
    assert.match(hostLinks, /out0/, 'host mode sees the host namespace\'s links');
    const none = h.strand(['run', '--network', 'none', '--', 'ip', '-o', 'link', 'show']).stdout.trim().split('\n');
    assert.equal(none.length, 1);
    assert.match(none[0]!, /lo: <LOOPBACK,UP/);

    h.strand(['network', 'create', '--subnet', '10.57.0.0/24', 'n1']);
    h.serverSandbox('a', 'n1', [7000], [], ['--hostname', 'alpha']);
    await answer(() => ask(h.netnsOf('a'), 'tcp', h.ipOf('a'), 7000));
    const shared = h.inside('a', ['sh', '-c', 'hostname; ip -o -4 addr show dev eth0']).stdout;
    assert.match(shared, /^alpha\n/);
    assert.ok(shared.includes(h.ipOf('a')));
    assert.match(h.inside('a', [process.execPath, '-e', CLIENT, '127.0.0.1', '7000']).stdout, /^a 127\.0\.0\.1/);
  });

  it('gives an internal network no way out, but traffic within it flows', async () => {
    const h = new StrandHost(bed());
    await serve(bed(), h.world.outside.name, 'tcp', 8000, 'out');
    h.strand(['network', 'create', '--internal', '--subnet', '10.58.0.0/24', 'n1']);
    h.serverSandbox('a', 'n1', [7000]);
    h.serverSandbox('b', 'n1', [7000]);
    assert.match((await answer(() => ask(h.netnsOf('b'), 'tcp', h.ipOf('a'), 7000))) ?? '', /^a /);
    assert.equal(await ask(h.netnsOf('a'), 'tcp', OUTSIDE, 8000, 1000), null);
    const routes = ipJson<{ dst: string }>(['route', 'show'], h.netnsOf('a'));
    assert.ok(!routes.some((r) => r.dst === 'default'));
    const refused = h.strand(['run', '--network', 'n1', '-p', '8090:80', '--', 'true'], { allowFail: true });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /internal/);
  });

  it('reconciles after a restart: a deleted bridge and its rules come back', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.59.0.0/24', 'n1']);
    h.serverSandbox('web', 'n1', [7000], [], ['-p', '8080:7000']);
    assert.ok(await answer(() => ask(h.world.outside.name, 'tcp', HOST_OUT, 8080)));
    const bridge = ipJson<{ ifname: string }>(['link', 'show', 'type', 'bridge'], h.name).find((l) => l.ifname.startsWith('sb-'))!.ifname;
    // A crash or a careless admin: the bridge (and with it the sandbox's veth) and every rule are gone.
    run('ip', ['-n', h.name, 'link', 'del', bridge]);
    run('ip', ['netns', 'exec', h.name, 'iptables', '-t', 'nat', '-F']);
    const gc = h.strand(['gc']);
    assert.doesNotMatch(gc.stderr, /./);
    const back = ipJson<{ ifname: string; addr_info: { local: string }[] }>(['addr', 'show', 'dev', bridge], h.name)[0];
    assert.ok(back?.addr_info.some((a) => a.local === '10.59.0.1'), 'bridge and gateway restored');
    assert.match(run('ip', ['netns', 'exec', h.name, 'iptables-save', '-t', 'nat']).stdout, /8080/, 'published port rules restored');
    assert.match((await answer(() => ask(h.world.outside.name, 'tcp', HOST_OUT, 8080))) ?? '', /^web /, 'and the sandbox is reachable again');
  });
});

// A one-shot TCP client: prints the answer of HOST:PORT.
const CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('net').connect({ host, port: +port });
let out = '';
s.on('data', (d) => (out += d));
s.on('end', () => { process.stdout.write(out); process.exit(0); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => process.exit(3), 3000);
`;
