// A host back after the cluster gave it up (agent/dead-hosts.ts): its
// endpoints on global networks may have lost their cluster-wide records and
// their addresses meanwhile. After each registration the agent checks every
// local endpoint of a global network: when its record and addresses are all
// still its own, nothing happens; when they were released and are still free,
// it takes them again and republishes the record, so the container keeps
// working; when another endpoint holds one of its addresses now, the local
// endpoint is removed (its interface goes from the container), because two
// endpoints with one address would break both. An endpoint whose network was
// removed meanwhile (possible once the cluster forgot its endpoints) is
// removed too.
import { isStrandError } from '../common/errors.js';
import type { Allocation, Owner } from '../ipam/index.js';
import type { CoreContext } from './context.js';
import type { Sandboxes } from './sandboxes.js';
import type { DetachedEndpoints } from './detached-endpoints.js';
import { poolOf } from './networks.js';
import { CNI_LABEL } from './ids.js';
import type { EndpointRecord, NetworkRecord } from './types.js';


export interface Reclaimed {
  republished: string[];
  removed: string[];
}

export class EndpointReclaim {
  constructor(
    private readonly ctx: CoreContext,
    private readonly sandboxes: Sandboxes,
    private readonly detached: DetachedEndpoints,
    /** Takes an endpoint of strand's own sandbox off its network (the Controller composes it). */
    private readonly disconnect: (ep: EndpointRecord) => Promise<void>,
  ) {}

  async run(log: (line: string) => void): Promise<Reclaimed> {
    const { records } = this.ctx;
    const out: Reclaimed = { republished: [], removed: [] };
    const networks = new Map((await records.networks.listNetworks()).map((n) => [n.id, n]));
    for (const ep of await records.endpoints.listEndpoints()) {
      const net = networks.get(ep.networkId);
      if (net && net.scope !== 'global') continue;
      try {
        const done = net ? await this.reclaimOne(net, ep, log) : await this.dropGone(ep, log);
        if (done) out[done].push(ep.id);
      } catch (err) {
        // The store going away is worth another try at the next resync; anything else is this endpoint's alone.
        if (isStrandError(err, 'unavailable')) throw err;
        log(`could not check endpoint ${ep.id.slice(0, 12)} against the cluster (${(err as Error).message}); left as it is`);
      }
    }
    return out;
  }

  private async reclaimOne(net: NetworkRecord, ep: EndpointRecord, log: (line: string) => void): Promise<keyof Reclaimed | undefined> {
    const { records, ipam } = this.ctx;
    const shared = await records.endpoints.getGlobalEndpoint(net.id, ep.id);
    // Addresses outside the network's pools (none should be) cannot be checked and are taken as they are.
    const held = await Promise.all(
      ep.addresses.map(async (cidr) => {
        const poolId = poolOf(net, cidr);
        return { cidr, poolId, holder: poolId ? await ipam.allocationAt(poolId, cidr.split('/')[0]!) : undefined };
      }),
    );
    const checked = held.filter((h) => h.poolId);
    const mine = (a: Allocation | undefined): boolean => a !== undefined && a.host === ipam.hostId && (a.owner.endpointId === undefined || a.owner.endpointId === ep.id);
    if (shared && checked.every((h) => mine(h.holder))) return undefined;
    const taken = checked.find((h) => h.holder && !mine(h.holder));
    if (!taken && (await this.retake(net, ep, checked.filter((h) => !h.holder)))) {
      await records.endpoints.saveEndpoint(ep, { global: true });
      log(`endpoint ${ep.id.slice(0, 12)} (${ep.addresses.join(', ')}) on ${net.name} had been given up by the cluster while this host was away; its addresses were free, so it is published again`);
      return 'republished';
    }
    if (ep.sandboxId) await this.disconnect(ep);
    else await this.detached.delete(ep.id);
    log(`endpoint ${ep.id.slice(0, 12)} on ${net.name} had been given up by the cluster while this host was away and ${taken?.cidr ?? 'one of its addresses'} is another endpoint's now: removed it here`);
    return 'removed';
  }

  /** An endpoint whose network is gone: its interface leaves the container (the veth pair goes with it), its records and any address it still holds go. */
  private async dropGone(ep: EndpointRecord, log: (line: string) => void): Promise<keyof Reclaimed> {
    const sandbox = ep.sandboxId ? await this.sandboxes.byId(ep.sandboxId) : undefined;
    try {
      this.sandboxes.removeInterface(sandbox, ep.ifName);
    } catch (err) {
      if (!isStrandError(err)) throw err; // the namespace went meanwhile: gc removes the sandbox
    }
    await this.ctx.ipam.releaseByOwner({ endpointId: ep.id });
    await this.detached.delete(ep.id); // with no network left it only removes the records, whatever made the endpoint
    log(`endpoint ${ep.id.slice(0, 12)} (${ep.addresses.join(', ')}) belonged to network ${ep.networkId.slice(0, 12)}, which was removed while this host was away: removed it here`);
    return 'removed';
  }

  /** Allocates the free addresses again under the endpoint; false (and nothing kept) if one was taken meanwhile. */
  private async retake(net: NetworkRecord, ep: EndpointRecord, free: { cidr: string; poolId: string | undefined }[]): Promise<boolean> {
    const { ipam } = this.ctx;
    const ifName = ep.ifName || ep.labels?.[CNI_LABEL.ifName];
    const owner: Owner = { endpointId: ep.id, ...(ifName ? { ifName } : {}), attachment: { network: net.name } };
    const got: { poolId: string; address: string }[] = [];
    for (const f of free) {
      if (!f.poolId) continue;
      const address = f.cidr.split('/')[0]!;
      try {
        await ipam.requestAddress(f.poolId, { owner, address });
        got.push({ poolId: f.poolId, address });
      } catch (err) {
        if (!isStrandError(err, 'exists')) throw err;
        for (const g of got) await ipam.releaseAddress(g.poolId, g.address).catch(() => undefined);
        return false;
      }
    }
    return true;
  }
}
