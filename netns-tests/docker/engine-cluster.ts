// Docker engines on a simulated cluster, for strand-overlay: the overlay
// tests' underlay (a switch namespace holding etcd, 192.168.254.0/24) and N
// "host" namespaces on it, each running `strand daemon` with the overlay
// agent and the Docker plugins, and a private dockerd of its own.
import { writeSysctl } from '../../netlink/index.js';
import { run, type TestBed } from '../harness.js';
import { STORE_IP, SUBNET, StoreServer } from '../overlay/cluster.js';
import { DockerEngine } from './engine.js';

export interface ClusterHost {
  id: string;
  netns: string;
  /** The host's underlay address, its VTEP. */
  ip: string;
  engine: DockerEngine;
}

export class EngineCluster {
  readonly hosts: ClusterHost[] = [];

  private constructor(
    readonly underlay: string,
    readonly store: StoreServer,
  ) {}

  /** Builds the underlay and hosts, starts etcd, then each host's strand daemon and dockerd. */
  static async start(bed: TestBed, count = 3): Promise<EngineCluster> {
    const ul = bed.netns('u');
    const unl = bed.netlink(ul.ns);
    unl.links.set('lo', { up: true });
    unl.links.add({ kind: 'bridge', name: 'sw', up: true });
    unl.addresses.add('sw', `${STORE_IP}/24`);
    const store = new StoreServer('etcd', ul.name);
    // Registered first, so it runs last: the engines' cleanup needs strand, and strand needs the store.
    bed.defer(() => store.remove());
    const c = new EngineCluster(ul.name, store);
    await store.start();
    for (let i = 0; i < count; i++) {
      const h = bed.netns(`h${i}`);
      const hnl = bed.netlink(h.ns);
      unl.links.add({ kind: 'veth', name: `p${i}`, master: 'sw', up: true, peer: { name: 'eth0', netns: h.ns } });
      hnl.links.set('lo', { up: true });
      hnl.links.set('eth0', { up: true });
      const ip = `${SUBNET}.${11 + i}`;
      hnl.addresses.add('eth0', `${ip}/24`);
      writeSysctl('net.ipv4.ip_forward', 1, h.ns);
      const id = `host${i}`;
      const engine = new DockerEngine(bed, {
        netns: h.name,
        store: store.url,
        hostId: id,
        strandArgs: ['--advertise-addr', ip, '--host-id', id, '--lease-ttl', '3', '--resync-interval', '2'],
      });
      c.hosts.push({ id, netns: h.name, ip, engine });
    }
    for (const h of c.hosts) await h.engine.start();
    return c;
  }

  /** The vxlan FDB of a host as iproute2 sees it: MAC → VTEP. */
  static fdb(netns: string, device: string): Map<string, string> {
    const r = run('bridge', ['-j', '-n', netns, 'fdb', 'show', 'dev', device], { allowFail: true });
    if (r.status !== 0) return new Map();
    const rows = JSON.parse(r.stdout || '[]') as { mac: string; dst?: string }[];
    return new Map(rows.filter((e) => e.dst && e.mac !== '00:00:00:00:00:00').map((e) => [e.mac, e.dst!]));
  }
}
