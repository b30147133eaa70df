// The firewall proven with real traffic, once per iptables backend: outbound
// NAT, published TCP/UDP ports from every direction, icc, internal networks
// and isolation between networks. The host namespace's FORWARD policy is
// DROP, as Docker sets it, so every forwarded packet needs strand's rules.
import assert from 'node:assert/strict';
import { useTestBed } from '../harness.js';
import { Firewall, type Backend, type NetworkRules, type EndpointPorts } from '../../firewall/index.js';
import { World, HOST_OUT, OUTSIDE, HOST_OUT6, OUTSIDE6 } from './topology.js';
import { serve, ask } from './traffic.js';

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
  });
}
