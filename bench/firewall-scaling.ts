// The cost of one publish() as published endpoints pile up, per iptables
// backend: the median time of publishing one more endpoint (one TCP port)
// when 1, 100 and 400 are already published. strand's rules live in
// per-endpoint chains with one jump each, so an operation touches only its
// own chain; what growth remains is the backend's own (iptables-legacy
// reads and rewrites the whole table in every restore).
//
// Runs in a namespace of its own (created and deleted here), never on the
// machine's own iptables.
import { randomBytes } from 'node:crypto';
import { createNetns, deleteNetns } from '../netlink/index.js';
import { Firewall, type Backend, type EndpointPorts } from '../firewall/index.js';
import { median, nowMs, report } from './stats.js';

const LEVELS = [1, 100, 400];
const SAMPLES = 11;

const endpoint = (i: number): EndpointPorts => ({
  endpointId: `bench-${i}`,
  networkId: 'bench',
  bridge: 'sbfw0',
  containerIp: `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
  ports: [{ proto: 'tcp', hostPort: 10000 + i, containerPort: 80 }],
});

async function measure(backend: Backend): Promise<{ publish: number[]; unpublish: number[] }> {
  const name = `sbfw${randomBytes(3).toString('hex')}`;
  const ns = createNetns(name);
  try {
    const fw = await Firewall.open({ ns, backend });
    await fw.ensureBase();
    await fw.addNetwork({ id: 'bench', bridge: 'sbfw0', subnets: ['10.96.0.0/12'], icc: true, internal: false, masquerade: true });
    const publish: number[] = [];
    const unpublish: number[] = [];
    let installed = 0;
    for (const level of LEVELS) {
      while (installed < level) await fw.publish(endpoint(installed++));
      const pub: number[] = [];
      const unpub: number[] = [];
      for (let s = 0; s < SAMPLES; s++) {
        const probe = endpoint(50_000 + s);
        const t0 = nowMs();
        await fw.publish(probe);
        const t1 = nowMs();
        await fw.unpublish(probe);
        unpub.push(nowMs() - t1);
        pub.push(t1 - t0);
      }
      publish.push(median(pub));
      unpublish.push(median(unpub));
    }
    return { publish, unpublish };
  } finally {
    ns.close();
    deleteNetns(name);
  }
}

export async function run(args: string[]): Promise<void> {
  const backends = (args.length ? args : ['legacy', 'nft']) as Backend[];
  const growth: number[] = [];
  for (const backend of backends) {
    const { publish, unpublish } = await measure(backend);
    const fmt = (xs: number[]): string => xs.map((x, i) => `${LEVELS[i]}: ${x.toFixed(2)} ms`).join(', ');
    console.log(`${backend} publish median (endpoints already published) ${fmt(publish)}`);
    console.log(`${backend} unpublish median ${fmt(unpublish)}`);
    const g = publish[publish.length - 1]! / publish[0]!;
    growth.push(g);
    report(`firewall_publish_growth_${backend}`, g);
  }
  // The headline is the worse backend's.
  report('firewall_publish_growth', Math.max(...growth));
}
