// The firewall proven with real traffic, once per iptables backend: outbound
// NAT, published TCP/UDP ports from every direction, icc, internal networks
// and isolation between networks. The host namespace's FORWARD policy is
// DROP, as Docker sets it, so every forwarded packet needs strand's rules.
import assert from 'node:assert/strict';
import { useTestBed, run } from '../../test/support/harness.js';
import { Firewall, type Backend, type NetworkRules, type EndpointPorts } from '../../firewall/index.js';
import { World, HOST_OUT, OUTSIDE, HOST_OUT6, OUTSIDE6 } from '../../test/support/topology.js';
import { serve, ask } from '../../test/support/traffic.js';

const net = (id: string, bridge: string, subnets: string[], extra: Partial<NetworkRules> = {}): NetworkRules => ({
  id, bridge, subnets, icc: true, internal: false, masquerade: true, ...extra,
});

for (const backend of ['legacy', 'nft'] as Backend[]) {
  describe(`firewall traffic (${backend})`, function () {
    this.timeout(60_000);
    const bed = useTestBed();

    async function setup(): Promise<{ w: World; fw: Firewall }> {
      const w = new World(bed());
      w.dropForwarding(backend);
      const fw = await Firewall.open({ ns: w.host.ns, backend });
      await fw.ensureBase();
      return { w, fw };
    }

    it('masquerades outbound traffic: the outside sees the host address', async () => {
      const { w, fw } = await setup();
      const br = w.bridge('br0', ['10.40.0.1/24']);
      const c = w.container(br, '10.40.0.2/24', '10.40.0.1');
      await serve(bed(), w.outside.name, 'tcp', 7000, 'out');
      await serve(bed(), w.outside.name, 'udp', 7001, 'out');
      const n = net('n1', br, ['10.40.0.0/24']);
      assert.equal(await ask(c.name, 'tcp', OUTSIDE, 7000), null, 'without rules the DROP policy stops it');
      await fw.addNetwork(n);
      assert.equal(await ask(c.name, 'tcp', OUTSIDE, 7000), `out ${HOST_OUT}`);
      assert.equal(await ask(c.name, 'udp', OUTSIDE, 7001), `out ${HOST_OUT}`);
      await fw.removeNetwork(n);
      assert.equal(await ask(c.name, 'tcp', OUTSIDE, 7000), null);
    });

    it('publishes TCP and UDP ports: from outside, from the host, via 127.0.0.1, by hairpin and from a neighbour', async () => {
      const { w, fw } = await setup();
      const br = w.bridge('br0', ['10.41.0.1/24']);
      const c1 = w.container(br, '10.41.0.2/24', '10.41.0.1');
      const c2 = w.container(br, '10.41.0.3/24', '10.41.0.1');
      await fw.addNetwork(net('n1', br, ['10.41.0.0/24']));
      await serve(bed(), c1.name, 'tcp', 80, 'c1');
      await serve(bed(), c1.name, 'udp', 53, 'c1');
      const ep: EndpointPorts = {
        endpointId: 'e1', networkId: 'n1', bridge: br, containerIp: c1.ip,
        ports: [{ proto: 'tcp', hostPort: 8080, containerPort: 80 }, { proto: 'udp', hostPort: 5353, containerPort: 53 }],
      };
      assert.equal(await ask(w.outside.name, 'tcp', HOST_OUT, 8080), null, 'nothing listens on the host before publish');
      await fw.publish(ep);
      for (const proto of ['tcp', 'udp'] as const) {
        const port = proto === 'tcp' ? 8080 : 5353;
        // From outside the source address is kept.
        assert.equal(await ask(w.outside.name, proto, HOST_OUT, port), `c1 ${OUTSIDE}`, `${proto} from outside`);
        assert.match((await ask(w.host.name, proto, HOST_OUT, port)) ?? '', /^c1 /, `${proto} from the host via its own address`);
        assert.equal(await ask(w.host.name, proto, '127.0.0.1', port), 'c1 10.41.0.1', `${proto} from the host via 127.0.0.1`);
        // Hairpin and neighbour: masqueraded to the gateway so replies return through the host.
        assert.equal(await ask(c1.name, proto, HOST_OUT, port), 'c1 10.41.0.1', `${proto} hairpin to itself`);
        assert.equal(await ask(c2.name, proto, HOST_OUT, port), 'c1 10.41.0.1', `${proto} from a neighbour`);
        assert.equal(await ask(c2.name, proto, '10.41.0.1', port), 'c1 10.41.0.1', `${proto} from a neighbour via the gateway`);
      }
      await fw.unpublish(ep);
      assert.equal(await ask(w.outside.name, 'tcp', HOST_OUT, 8080), null);
      assert.equal(await ask(w.outside.name, 'udp', HOST_OUT, 5353, 1000), null);
      assert.equal(await ask(w.host.name, 'tcp', '127.0.0.1', 8080), null);
    });

    it('icc off: containers on one bridge cannot talk, their published ports still work from outside', async () => {
      const { w, fw } = await setup();
      const br = w.bridge('br0', ['10.42.0.1/24']);
      const c1 = w.container(br, '10.42.0.2/24', '10.42.0.1');
      const c2 = w.container(br, '10.42.0.3/24', '10.42.0.1');
      await serve(bed(), c2.name, 'tcp', 80, 'c2');
      await serve(bed(), c2.name, 'udp', 53, 'c2');
      const n = net('n1', br, ['10.42.0.0/24'], { icc: false });
      await fw.addNetwork({ ...n, icc: true });
      assert.equal(await ask(c1.name, 'tcp', c2.ip, 80), `c2 ${c1.ip}`, 'icc on: direct traffic flows');
      await fw.addNetwork(n); // re-adding replaces the network's rules
      assert.equal(await ask(c1.name, 'tcp', c2.ip, 80), null, 'icc off blocks TCP');
      assert.equal(await ask(c1.name, 'udp', c2.ip, 53, 1000), null, 'icc off blocks UDP');
      assert.equal(await ask(c2.name, 'tcp', '10.42.0.2', 80, 1000), null, 'and the other way');
      await fw.publish({ endpointId: 'e2', networkId: 'n1', bridge: br, containerIp: c2.ip, ports: [{ proto: 'tcp', hostPort: 8080, containerPort: 80 }, { proto: 'udp', hostPort: 5353, containerPort: 53 }] });
      assert.equal(await ask(w.outside.name, 'tcp', HOST_OUT, 8080), `c2 ${OUTSIDE}`);
      assert.equal(await ask(w.outside.name, 'udp', HOST_OUT, 5353), `c2 ${OUTSIDE}`);
      assert.equal(await ask(c1.name, 'tcp', c2.ip, 80), null, 'publishing does not open the direct path');
    });

    it('internal network: no way in or out, containers on the bridge still talk', async () => {
      const { w, fw } = await setup();
      const br = w.bridge('br0', ['10.43.0.1/24']);
      const c1 = w.container(br, '10.43.0.2/24', '10.43.0.1');
      const c2 = w.container(br, '10.43.0.3/24', '10.43.0.1');
      // Give the outside a route to the subnet, so only the firewall stands in the way.
      bed().netlink(w.outside.ns).routes.add({ dst: '10.43.0.0/24', gateway: HOST_OUT });
      await serve(bed(), w.outside.name, 'tcp', 7000, 'out');
      await serve(bed(), c1.name, 'tcp', 80, 'c1');
      const n = net('n1', br, ['10.43.0.0/24']);
      await fw.addNetwork(n);
      assert.equal(await ask(c1.name, 'tcp', OUTSIDE, 7000), `out ${HOST_OUT}`, 'as a normal network it gets out');
      assert.equal(await ask(w.outside.name, 'tcp', c1.ip, 80), null, 'a normal network is not open to the outside either');
      await fw.addNetwork({ ...n, internal: true });
      assert.equal(await ask(c1.name, 'tcp', OUTSIDE, 7000), null, 'internal: no way out');
      assert.equal(await ask(w.outside.name, 'tcp', c1.ip, 80), null, 'internal: no way in');
      assert.equal(await ask(c2.name, 'tcp', c1.ip, 80), `c1 ${c2.ip}`, 'within the bridge');
      assert.doesNotMatch(w.save(backend), /MASQUERADE|SNAT/, 'an internal network gets no NAT');
      await fw.removeAll();
      assert.equal(await ask(c1.name, 'tcp', OUTSIDE, 7000), null, 'DROP policy without strand rules');
    });

    it('isolates two networks; a container on both reaches both', async () => {
      const { w, fw } = await setup();
      const brA = w.bridge('brA', ['10.44.0.1/24']);
      const brB = w.bridge('brB', ['10.45.0.1/24']);
      const a = w.container(brA, '10.44.0.2/24', '10.44.0.1');
      const b = w.container(brB, '10.45.0.2/24', '10.45.0.1');
      const both = w.container(brA, '10.44.0.9/24', '10.44.0.1');
      w.attach(both, brB, '10.45.0.9/24');
      await serve(bed(), a.name, 'tcp', 80, 'a');
      await serve(bed(), b.name, 'tcp', 80, 'b');
      await fw.addNetwork(net('na', brA, ['10.44.0.0/24']));
      await fw.addNetwork(net('nb', brB, ['10.45.0.0/24']));
      assert.equal(await ask(a.name, 'tcp', b.ip, 80), null, 'A to B');
      assert.equal(await ask(b.name, 'tcp', a.ip, 80), null, 'B to A');
      assert.equal(await ask(both.name, 'tcp', a.ip, 80), 'a 10.44.0.9');
      assert.equal(await ask(both.name, 'tcp', b.ip, 80), 'b 10.45.0.9');
      // A published port is a service of the host: reachable from the other network, whichever was added first.
      await fw.publish({ endpointId: 'eb', networkId: 'nb', bridge: brB, containerIp: b.ip, ports: [{ proto: 'tcp', hostPort: 8080, containerPort: 80 }] });
      await fw.publish({ endpointId: 'ea', networkId: 'na', bridge: brA, containerIp: a.ip, ports: [{ proto: 'tcp', hostPort: 8081, containerPort: 80 }] });
      // Leaving its own bridge, A's traffic is masqueraded like any outbound traffic.
      assert.equal(await ask(a.name, 'tcp', HOST_OUT, 8080), 'b 10.45.0.1');
      assert.equal(await ask(b.name, 'tcp', HOST_OUT, 8081), 'a 10.44.0.1');
      assert.equal(await ask(a.name, 'tcp', b.ip, 80), null, 'still no direct path');
      // An internal network is reached by no one, published port or not.
      await fw.addNetwork(net('nb', brB, ['10.45.0.0/24'], { internal: true }));
      assert.equal(await ask(a.name, 'tcp', HOST_OUT, 8080), null, 'internal: published port closed');
      // Control: without strand's rules and with an open policy the kernel would route A to B.
      await fw.removeAll();
      run('ip', ['netns', 'exec', w.host.name, `iptables-${backend}`, '-P', 'FORWARD', 'ACCEPT']);
      assert.equal(await ask(a.name, 'tcp', b.ip, 80), `b ${a.ip}`);
    });

    it('IPv6: outbound NAT and a published port via ip6tables', async () => {
      const { w, fw } = await setup();
      const br = w.bridge('br0', ['10.46.0.1/24', 'fd00:46::1/64']);
      const c = w.container(br, 'fd00:46::2/64', 'fd00:46::1');
      await serve(bed(), w.outside.name, 'tcp', 7000, 'out');
      await serve(bed(), c.name, 'tcp', 80, 'c');
      await serve(bed(), c.name, 'udp', 53, 'c');
      await fw.addNetwork(net('n6', br, ['10.46.0.0/24', 'fd00:46::/64']));
      assert.equal(await ask(c.name, 'tcp', OUTSIDE6, 7000), `out ${HOST_OUT6}`);
      const ep: EndpointPorts = { endpointId: 'e6', networkId: 'n6', bridge: br, containerIp: c.ip, ports: [
        { proto: 'tcp', hostPort: 8080, containerPort: 80 }, { proto: 'udp', hostPort: 5353, containerPort: 53 },
        // Of the other family: skipped, as Docker does.
        { proto: 'tcp', hostIp: '127.0.0.1', hostPort: 9090, containerPort: 80 },
      ] };
      await fw.publish(ep);
      assert.equal(await ask(w.outside.name, 'tcp', HOST_OUT6, 8080), `c ${OUTSIDE6}`);
      assert.equal(await ask(w.outside.name, 'udp', HOST_OUT6, 5353), `c ${OUTSIDE6}`);
      assert.equal(await ask(c.name, 'tcp', HOST_OUT6, 8080), 'c fd00:46::1', 'hairpin');
      assert.doesNotMatch(w.save(backend, 4), /strand:e:e6/, 'no IPv4 rules for an IPv6 address');
      await fw.unpublish(ep);
      assert.equal(await ask(w.outside.name, 'tcp', HOST_OUT6, 8080), null);
      assert.doesNotMatch(w.save(backend, 6), /strand:e:|STRAND-P-/);
    });
  });
}
