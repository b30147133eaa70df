// Docker engines on a simulated cluster, for strand-overlay: the overlay
// tests' underlay (a switch namespace holding etcd, 192.168.254.0/24) and N
// "host" namespaces on it, each running `strand daemon` with the overlay
// agent and the Docker plugins, and a private dockerd of its own.
import type { TestBed } from './harness.js';
import { StoreServer, buildUnderlay, vxlanFdb } from './cluster.js';
import { DockerEngine } from './docker-engine.js';

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
  static async start(bed: TestBed, count = 3, strandArgs: string[] = []): Promise<EngineCluster> {
    const ul = buildUnderlay(bed, count);
    const store = new StoreServer('etcd', ul.name);
    // Registered before the engines, so it runs after them: the engines' cleanup needs strand, and strand needs the store.
    bed.defer(() => store.remove());
    const c = new EngineCluster(ul.name, store);
    await store.start();
    for (const [i, { netns, ip }] of ul.hosts.entries()) {
      const id = `host${i}`;
      const engine = new DockerEngine(bed, {
        netns,
        store: store.url,
        hostId: id,
        strandArgs: ['--advertise-addr', ip, '--host-id', id, '--lease-ttl', '3', '--resync-interval', '2', ...strandArgs],
      });
      c.hosts.push({ id, netns, ip, engine });
    }
    for (const h of c.hosts) await h.engine.start();
    return c;
  }

  /** The vxlan FDB of a host as iproute2 sees it: MAC → VTEP. */
  static fdb(netns: string, device: string): Map<string, string> {
    return vxlanFdb(netns, device);
  }
}
