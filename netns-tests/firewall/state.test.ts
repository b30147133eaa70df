// The firewall's kernel state as iptables itself prints it, once per
// backend: every operation leaves exactly its own rules, removal leaves
// nothing, repeated and repaired operations converge, bad input leaves no
// trace, and the backend is detected from the rules already there.
import assert from 'node:assert/strict';
import { useTestBed, run } from '../../test/support/harness.js';
import { Firewall, detectBackend, forgetBackends, pickFreePort, type Backend, type NetworkRules, type EndpointPorts } from '../../firewall/index.js';
import { StrandError } from '../../common/errors.js';
import { serve } from '../../test/support/traffic.js';

const save = (ns: string, tool: string): string => run('ip', ['netns', 'exec', ns, tool]).stdout;
/** Rule and chain lines of a save, without the comment and counter noise that differs between runs. */
const body = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('-') || l.startsWith(':') || l.startsWith('*'));
const strandLines = (text: string): string[] => text.split('\n').filter((l) => /strand/i.test(l));

const network = (id: string, bridge: string, extra: Partial<NetworkRules> = {}): NetworkRules => ({
  id, bridge, subnets: ['10.50.0.0/24', 'fd00:50::/64'], icc: false, internal: false, masquerade: true, ...extra,
});
const endpoint = (id: string, ip: string, hostPort: number): EndpointPorts => ({
  endpointId: id, networkId: 'n1', bridge: 'br0', containerIp: ip,
  ports: [{ proto: 'tcp', hostPort, containerPort: 80 }, { proto: 'udp', hostIp: '127.0.0.1', hostPort, containerPort: 53 }],
});

for (const backend of ['legacy', 'nft'] as Backend[]) {
  describe(`firewall state (${backend})`, () => {
    const bed = useTestBed();
    const v4 = `iptables-${backend}-save`;
    const v6 = `ip6tables-${backend}-save`;

    async function open(): Promise<{ name: string; fw: Firewall }> {
      const { name, ns } = bed().netns('h');
      return { name, fw: await Firewall.open({ ns, backend }) };
    }

    it('removes everything an endpoint and a network added, and removeAll leaves no trace', async () => {
      const { name, fw } = await open();
      const empty4 = body(save(name, v4));
      await fw.ensureBase();
      const base4 = body(save(name, v4));
      const base6 = body(save(name, v6));
      assert.ok(base4.some((l) => /^-A FORWARD .*-j STRAND-FORWARD/.test(l)), 'FORWARD jumps to strand');
      assert.ok(base4.some((l) => /^-A PREROUTING .*--dst-type LOCAL.*-j STRAND-DNAT/.test(l)));
      assert.ok(base4.some((l) => /^-A OUTPUT .*--dst-type LOCAL.*-j STRAND-DNAT/.test(l)));

      const n = network('n1', 'br0');
      await fw.addNetwork(n);
      const net4 = body(save(name, v4));
      assert.ok(net4.includes(':STRAND-N-n1 - [0:0]') && net4.includes(':STRAND-M-n1 - [0:0]'));
      assert.ok(net4.some((l) => l.includes('-A STRAND-M-n1 -s 10.50.0.0/24 ! -o br0') && l.endsWith('-j MASQUERADE')));
      assert.ok(net4.some((l) => l.startsWith('-A STRAND-N-n1 -i br0 -o br0') && l.endsWith('-j DROP')), 'icc off');
      assert.ok(body(save(name, v6)).some((l) => l.includes('-A STRAND-M-n1 -s fd00:50::/64 ! -o br0')));

      await fw.publish(endpoint('e1', '10.50.0.2', 8080));
      await fw.publish(endpoint('e2', 'fd00:50::3', 8081));
      const ep4 = save(name, v4);
      assert.match(ep4, /-A STRAND-P-e1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.50.0.2:80/);
      assert.match(ep4, /-A STRAND-P-e1 -d 127.0.0.1\/32 -p udp -m udp --dport 8080 -j DNAT --to-destination 10.50.0.2:53/);
      assert.match(save(name, v6), /-A STRAND-P-e2 -p tcp -m tcp --dport 8081 -j DNAT --to-destination \[fd00:50::3\]:80/);
      assert.doesNotMatch(save(name, v6), /127\.0\.0\.1/, 'the IPv4-only mapping is not in ip6tables');
      assert.deepEqual(await fw.inventory(), { networks: ['n1'], endpoints: ['e1', 'e2'] });

      await fw.unpublish(endpoint('e1', '10.50.0.2', 8080));
      await fw.unpublish(endpoint('e2', 'fd00:50::3', 8081));
      assert.deepEqual(body(save(name, v4)), net4, 'unpublish restores the state before publish');
      await fw.removeNetwork(n);
      assert.deepEqual(body(save(name, v4)), base4, 'removeNetwork restores the base');
      assert.deepEqual(body(save(name, v6)), base6);
      assert.deepEqual(await fw.inventory(), { networks: [], endpoints: [] });

      await fw.addNetwork(n);
      await fw.publish(endpoint('e1', '10.50.0.2', 8080));
      await fw.removeAll();
      assert.deepEqual(strandLines(save(name, v4)), []);
      assert.deepEqual(strandLines(save(name, v6)), []);
      const after = body(save(name, v4)).filter((l) => !l.startsWith('*') && !/^:(PREROUTING|INPUT|OUTPUT|POSTROUTING|FORWARD) /.test(l));
      assert.deepEqual(after, empty4.filter((l) => !l.startsWith('*') && !/^:(PREROUTING|INPUT|OUTPUT|POSTROUTING|FORWARD) /.test(l)));
    });

    it('is idempotent: adding twice equals adding once, removing twice succeeds', async () => {
      const { name, fw } = await open();
      const n = network('n1', 'br0');
      const e = endpoint('e1', '10.50.0.2', 8080);
      await fw.addNetwork(n);
      await fw.publish(e);
      const once4 = body(save(name, v4));
      const once6 = body(save(name, v6));
      await fw.addNetwork(n);
      await fw.publish(e);
      await fw.ensureBase();
      assert.deepEqual(body(save(name, v4)), once4);
      assert.deepEqual(body(save(name, v6)), once6);
      // Publishing a new port list replaces the old one.
      await fw.publish({ ...e, ports: [{ proto: 'tcp', hostPort: 9000, containerPort: 90 }] });
      const re = save(name, v4);
      assert.match(re, /--dport 9000 -j DNAT --to-destination 10.50.0.2:90/);
      assert.doesNotMatch(re, /--dport 8080/);
      assert.equal(re.split('\n').filter((l) => l.includes('-j STRAND-P-e1')).length, 1, 'one jump');
      // An empty port list is an unpublish.
      await fw.publish({ ...e, ports: [] });
      assert.doesNotMatch(save(name, v4), /STRAND-P-e1/);
      await fw.unpublish(e);
      await fw.removeNetwork(n);
      await fw.removeNetwork(n);
      await fw.removeAll();
      await fw.removeAll();
      assert.deepEqual(strandLines(save(name, v4)), []);
    });

    it('repairs: finds and removes rules by tag when the caller no longer knows how they were made', async () => {
      const { name, fw } = await open();
      await fw.addNetwork(network('n1', 'br0'));
      // A crash left the network's rules; core now only knows its id (the bridge was renamed).
      await fw.removeNetwork(network('n1', 'other0', { internal: true }));
      assert.deepEqual(strandLines(save(name, v4)).filter((l) => /n1/.test(l)), []);
      // Someone deleted our base jump by hand: the next add puts it back.
      run('ip', ['netns', 'exec', name, `iptables-${backend}`, '-t', 'nat', '-D', 'POSTROUTING', '-m', 'comment', '--comment', 'strand:base', '-j', 'STRAND-POSTROUTING']);
      run('ip', ['netns', 'exec', name, `iptables-${backend}`, '-t', 'nat', '-F', 'STRAND-POSTROUTING']);
      run('ip', ['netns', 'exec', name, `iptables-${backend}`, '-t', 'nat', '-X', 'STRAND-POSTROUTING']);
      await fw.addNetwork(network('n2', 'br1'));
      const s = save(name, v4);
      assert.match(s, /-A POSTROUTING -m comment --comment "?strand:base"? -j STRAND-POSTROUTING/);
      assert.match(s, /-A STRAND-POSTROUTING -m comment --comment "?strand:n:n2"? -j STRAND-M-n2/);
    });

    it('removes a network or an endpoint by id alone, as GC after a crash does', async () => {
      const { name, fw } = await open();
      await fw.addNetwork(network('n1', 'br0'));
      await fw.addNetwork(network('n2', 'br1'));
      await fw.publish(endpoint('e1', '10.50.0.2', 8080));
      await fw.publish(endpoint('e2', 'fd00:50::3', 8081));
      await fw.removeEndpointById('e2');
      await fw.removeNetworkById('n2');
      await fw.removeNetworkById('n2');
      assert.deepEqual(await fw.inventory(), { networks: ['n1'], endpoints: ['e1'] });
      for (const text of [save(name, v4), save(name, v6)]) {
        assert.doesNotMatch(text, /STRAND-[NM]-n2|strand:n:n2|STRAND-P-e2|strand:e:e2/);
        assert.match(text, /STRAND-N-n1/);
      }
      assert.match(save(name, v4), /STRAND-P-e1/);
    });

    it('rejects bad input with a clear error and makes no rule', async () => {
      const { name, fw } = await open();
      const before = save(name, v4);
      const bad: [string, () => Promise<unknown>, RegExp][] = [
        ['bridge name', () => fw.addNetwork(network('n1', 'a-bridge-name-too-long')), /network "n1".*interface name/],
        ['subnet', () => fw.addNetwork(network('n1', 'br0', { subnets: ['10.0.0.0/33'] })), /network "n1": subnet .*prefix length/],
        ['network id', () => fw.addNetwork(network('n 1', 'br0')), /invalid network id "n 1"/],
        ['container ip', () => fw.publish({ ...endpoint('e1', '10.50.0.2', 80), containerIp: '10.50.0.300' }), /containerIp "10.50.0.300"/],
        ['host port 0', () => fw.publish({ ...endpoint('e1', '10.50.0.2', 80), ports: [{ proto: 'tcp', hostPort: 0, containerPort: 80 }] }), /not chosen yet/],
        ['port range', () => fw.publish({ ...endpoint('e1', '10.50.0.2', 80), ports: [{ proto: 'tcp', hostPort: 70000, containerPort: 80 }] }), /hostPort must be an integer from 1 to 65535/],
        ['proto', () => fw.publish({ ...endpoint('e1', '10.50.0.2', 80), ports: [{ proto: 'sctp' as 'tcp', hostPort: 80, containerPort: 80 }] }), /proto must be "tcp" or "udp"/],
        ['duplicate', () => fw.publish({ ...endpoint('e1', '10.50.0.2', 80), ports: [{ proto: 'tcp', hostPort: 80, containerPort: 80 }, { proto: 'tcp', hostPort: 80, containerPort: 81 }] }), /host port 80\/tcp is mapped twice/],
      ];
      for (const [what, call, message] of bad) {
        await assert.rejects(call, (err: unknown) => err instanceof StrandError && err.code === 'invalid' && message.test(err.message), what);
      }
      assert.deepEqual(body(save(name, v4)), body(before), 'nothing was made');
      assert.deepEqual(strandLines(save(name, v4)), []);
      assert.deepEqual(strandLines(save(name, v6)), []);
    });

    it('keeps chain names within 28 characters for long ids, and inventory reports the full ids', async () => {
      const { name, fw } = await open();
      const long = 'f'.repeat(40) + '0123456789abcdef0123456789';
      await fw.addNetwork(network(long, 'br0'));
      await fw.publish({ ...endpoint(long, '10.50.0.2', 80), networkId: long });
      const chains = save(name, v4).split('\n').filter((l) => l.startsWith(':STRAND-')).map((l) => l.slice(1).split(' ')[0]!);
      assert.ok(chains.length >= 5);
      for (const c of chains) assert.ok(c.length <= 28, c);
      assert.deepEqual(await fw.inventory(), { networks: [long], endpoints: [long] });
      await fw.removeNetwork(network(long, 'br0'));
      await fw.unpublish({ ...endpoint(long, '10.50.0.2', 80), networkId: long });
      assert.deepEqual(strandLines(save(name, v4)).filter((l) => !/strand:base|STRAND-(FORWARD|ISOLATION|DNAT|POSTROUTING)\b/.test(l)), []);
    });
  });
}

describe('firewall backend detection', () => {
  const bed = useTestBed();
  afterEach(() => {
    forgetBackends();
    delete process.env.STRAND_IPTABLES;
  });

  it('uses the backend that already holds rules, nft when neither does, and remembers it per namespace', async () => {
    const fresh = bed().netns();
    assert.equal(await detectBackend(fresh.ns), 'nft');
    assert.equal((await Firewall.open({ ns: fresh.ns })).backend, 'nft');

    const legacy = bed().netns();
    run('ip', ['netns', 'exec', legacy.name, 'iptables-legacy', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
    run('ip', ['netns', 'exec', legacy.name, 'ip6tables-legacy', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
    assert.equal((await Firewall.open({ ns: legacy.ns })).backend, 'legacy');

    const nft = bed().netns();
    run('ip', ['netns', 'exec', nft.name, 'iptables-legacy', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
    run('ip', ['netns', 'exec', nft.name, 'iptables-nft', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
    run('ip', ['netns', 'exec', nft.name, 'iptables-nft', '-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT']);
    assert.equal(await detectBackend(nft.ns), 'nft', 'two nft rules beat one legacy rule');

    // Cached: rules added later do not change the answer for that namespace.
    for (let i = 0; i < 3; i++) run('ip', ['netns', 'exec', fresh.name, 'iptables-legacy', '-A', 'INPUT', '-j', 'ACCEPT']);
    assert.equal((await Firewall.open({ ns: fresh.ns })).backend, 'nft');
    forgetBackends();
    assert.equal((await Firewall.open({ ns: fresh.ns })).backend, 'legacy');
  });

  it('can be forced by option or STRAND_IPTABLES, and refuses anything else', async () => {
    const { ns } = bed().netns();
    process.env.STRAND_IPTABLES = 'legacy';
    assert.equal((await Firewall.open({ ns })).backend, 'legacy');
    assert.equal((await Firewall.open({ ns, backend: 'nft' })).backend, 'nft');
    process.env.STRAND_IPTABLES = 'xtables';
    await assert.rejects(Firewall.open({ ns }), /invalid iptables backend "xtables" in STRAND_IPTABLES/);
    await assert.rejects(Firewall.open({ ns, backend: 'old' as Backend }), /invalid iptables backend "old"/);
  });
});

describe('firewall pickFreePort in a namespace', () => {
  const bed = useTestBed();

  it('skips host ports bound by sockets in that namespace', async () => {
    const { name, ns } = bed().netns();
    run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    await serve(bed(), name, 'tcp', 49153, 's');
    await serve(bed(), name, 'udp', 49155, 's');
    assert.equal(pickFreePort({ start: 49153, end: 49160 }, new Set(), 'tcp', { ns }), 49154);
    assert.equal(pickFreePort({ start: 49153, end: 49160 }, new Set([49154]), 'tcp', { ns }), 49155, 'a UDP socket does not hold a TCP port');
    assert.equal(pickFreePort({ start: 49155, end: 49160 }, new Set(), 'udp', { ns }), 49156);
  });
});
