// Which cluster-wide overlay network each engine's network stands for. Every
// host's dockerd creates "the same" strand-overlay network under its own
// NetworkID, and strand-ipam gave each a pool in that host's local space
// before strand saw the driver; strand joins them all into one global
// network record. Kept in the store:
//
//   docker/overlay/hosts/<hostId>/networks/<engineNetworkId>  the link: cluster
//       network id, and per local pool the global pool its endpoint addresses
//       really come from
//   docker/overlay/members/<clusterId>/<hostId>  engineNetworkId: which hosts'
//       engines still use the cluster network (the last one out removes it)
//
// Only this host's daemon writes its links, so they are cached after one read.
import type { Store } from '../../store/types.js';
import { ENGINE_HOSTS, ENGINE_MEMBERS as MEMBERS, engineMembers } from '../../cluster/engines.js';

/** A local strand-ipam pool of an engine's overlay network, redirected to the cluster's pool. */
export interface PoolAlias {
  globalPoolId: string;
  /** Addresses dockerd took from the local pool before the network existed (gateway, aux): they stay there. */
  local: string[];
}

export interface OverlayLink {
  engineNetworkId: string;
  clusterId: string;
  /** Local pool id → where its addresses come from. */
  pools: Record<string, PoolAlias>;
}



export class OverlayLinks {
  private loaded: Promise<Map<string, OverlayLink>> | undefined;

  constructor(
    private readonly store: Store,
    private readonly hostId: string,
  ) {}

  private get prefix(): string {
    return `${ENGINE_HOSTS}${this.hostId}/networks/`;
  }

  private memberKey(clusterId: string): string {
    return `${MEMBERS}${clusterId}/${this.hostId}`;
  }

  private links(): Promise<Map<string, OverlayLink>> {
    this.loaded ??= this.store.list(this.prefix).then(
      (kvs) => new Map(kvs.map((kv) => JSON.parse(kv.value) as OverlayLink).map((l) => [l.engineNetworkId, l])),
      (err: unknown) => {
        this.loaded = undefined; // a store outage must not stick
        throw err;
      },
    );
    return this.loaded;
  }

  async get(engineNetworkId: string): Promise<OverlayLink | undefined> {
    return (await this.links()).get(engineNetworkId);
  }

  /** The alias of a local pool, if it belongs to an engine's overlay network. */
  async poolAlias(localPoolId: string): Promise<PoolAlias | undefined> {
    for (const link of (await this.links()).values()) {
      // Own keys only: a PoolID such as __proto__ or toString names no pool.
      if (Object.hasOwn(link.pools, localPoolId)) return link.pools[localPoolId];
    }
    return undefined;
  }

  /** Records the link and this host's membership together. */
  async add(link: OverlayLink): Promise<void> {
    const links = await this.links();
    await this.store.txn([], [
      { op: 'put', key: this.prefix + link.engineNetworkId, value: JSON.stringify(link) },
      { op: 'put', key: this.memberKey(link.clusterId), value: link.engineNetworkId },
    ]);
    links.set(link.engineNetworkId, link);
  }

  /** Forgets the link and this host's membership; returns the hosts still using the cluster network. */
  async remove(link: OverlayLink): Promise<string[]> {
    const links = await this.links();
    await this.store.txn([], [
      { op: 'delete', key: this.prefix + link.engineNetworkId },
      { op: 'delete', key: this.memberKey(link.clusterId) },
    ]);
    links.delete(link.engineNetworkId);
    // Listed after our own delete: of two hosts leaving at once, at least one sees none left.
    return this.members(link.clusterId);
  }

  /** Hosts whose engines use the cluster network. */
  members(clusterId: string): Promise<string[]> {
    return engineMembers(this.store, clusterId);
  }
}
