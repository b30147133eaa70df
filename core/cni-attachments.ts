// CNI attachments: the endpoints a stateless CNI runtime asks for, each in
// the runtime's namespace (the sandbox), on a CNI-owned network made from the
// conflist by its first ADD and removed with its last DEL on this host. The
// plugins parse the config and assemble the result; everything between is
// here, so a CNI ADD reaches the same records, drivers and undo as a
// `strand run` or a Docker Join.
import type { NetNs } from '../netlink/index.js';
import { hostLock, withHostLock } from '../common/host-lock.js';
import type { CoreContext } from './context.js';
import type { Networks, CniNetworkRequest } from './networks.js';
import type { DetachedEndpoints } from './detached-endpoints.js';
import { Undo } from './undo.js';
import { CNI_LABEL, cniNetworkId } from './ids.js';
import { configureEndpoint, removeInterfaceIn } from './sandbox-net.js';
import type { EndpointRecord, NetworkRecord, PortBinding } from './types.js';


/**
 * Making a CNI network and saving an attachment's record, against removing
 * the network with its last attachment: one at a time across the daemon and
 * plugin processes of this host, so an ADD never lands on a network a DEL is
 * taking away.
 */
const CNI_LOCK = hostLock('cni-networks');

export interface CniAttachRequest {
  network: CniNetworkRequest;
  /** The attachment id (core/ids.ts cniAttachmentId). */
  id: string;
  containerId: string;
  ifName: string;
  /** The runtime's namespace, by path and open: the sandbox. */
  netns: string;
  ns: NetNs;
  /** From the IPAM plugin's result, with prefix length. */
  addresses: string[];
  mac?: string;
  ports: PortBinding[];
  /** Default routes through these (the plugin's isDefaultGateway); none when absent. */
  gateway?: string;
  gatewayV6?: string;
  /** Routes from the IPAM result. */
  routes: { dst: string; gateway?: string }[];
}

/** What a DEL knows of an attachment made before its record was kept (an older strand): enough to find its interface and rules. */
export interface CniLegacyAttachment {
  network: CniNetworkRequest;
  addresses: string[];
  ports: PortBinding[];
  /** The runtime's namespace and the interface in it, when the DEL names them. */
  netns?: string;
  ifName?: string;
}

export class CniAttachments {
  /** How long a network with no attachment left is kept, in case one comes back (0: removed at once). */
  private lingerMs = 0;
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly networks: Networks,
    private readonly detached: DetachedEndpoints,
  ) {}

  /**
   * A long-lived process (the daemon) keeps an unused network this long
   * before removing it: a pod that is recreated (or a node that runs one at a
   * time) would otherwise make and remove the bridge and its rules every time.
   */
  setLinger(ms: number): void {
    this.lingerMs = ms;
  }

  /** Forgets the pending removals (reconcile at the next start removes what is still unused). */
  close(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  async attach(req: CniAttachRequest): Promise<{ network: NetworkRecord; endpoint: EndpointRecord }> {
    // A record without its interface is a crashed ADD's, never DELed: it goes first.
    if (await this.detached.get(req.id)) await this.detach(req.network.name, req.id);
    return new Undo().run(async (undo) => {
      const labels = { [CNI_LABEL.network]: req.network.name, [CNI_LABEL.containerId]: req.containerId, [CNI_LABEL.ifName]: req.ifName, [CNI_LABEL.netns]: req.netns };
      const { network, endpoint } = await withHostLock(CNI_LOCK, async () => {
        const network = await this.networks.ensureCni(req.network);
        // The interface is made right inside the runtime's namespace, under its final name.
        const endpoint = await this.detached.create(network.id, { id: req.id, addresses: req.addresses, mac: req.mac ?? '', ports: req.ports, labels, sandbox: { ns: req.ns, ifName: req.ifName } });
        return { network, endpoint };
      });
      undo.push('remove the attachment', () => this.detach(req.network.name, req.id));
      const { join } = await this.detached.join(req.id, req.ns);
      // The runtime's config decides the routes (isDefaultGateway, the IPAM result's), not the network's gateways.
      configureEndpoint(this.ctx.host, req.ns, endpoint, { ...join, gateway: req.gateway, gatewayV6: req.gatewayV6, routes: req.routes, noDefaultRoute: !req.gateway && !req.gatewayV6 });
      await this.ctx.driver(network.driver).programExternalConnectivity(network, endpoint);
      return { network, endpoint };
    });
  }

  /**
   * Removes the attachment (published ports, interface, record) and, with
   * its last one, the network's kernel state and record. Succeeds for one
   * already gone; `legacy` tears down one an older strand made without a
   * record.
   */
  async detach(networkName: string, id: string, legacy?: CniLegacyAttachment): Promise<void> {
    const networkId = cniNetworkId(networkName);
    const endpoint = await this.detached.get(id);
    if (endpoint) {
      const netns = endpoint.labels?.[CNI_LABEL.netns];
      const network = await this.ctx.records.networks.getNetwork(endpoint.networkId);
      if (netns && network && this.ctx.driver(network.driver).capabilities.sandboxOnlyInterface) removeInterfaceIn(netns, endpoint.ifName);
      await this.detached.delete(id);
    } else {
      await this.removeUnrecorded(networkId, id, legacy);
    }
    if (this.lingerMs > 0) this.removeLater(networkId);
    else await this.removeIfUnused(networkId);
  }

  private removeIfUnused(networkId: string): Promise<void> {
    return withHostLock(CNI_LOCK, () => this.networks.removeCniIfUnused(networkId));
  }

  private removeLater(networkId: string): void {
    clearTimeout(this.pending.get(networkId));
    const timer = setTimeout(() => {
      this.pending.delete(networkId);
      this.removeIfUnused(networkId).catch((err: Error) => console.error(`strand: removing unused CNI network ${networkId.slice(0, 12)}: ${err.message}`));
    }, this.lingerMs);
    timer.unref();
    this.pending.set(networkId, timer);
  }

  /** Every CNI network of this host that has no attachment left (a crash, a daemon stopped while one lingered): removed; their names. */
  async sweepUnused(): Promise<string[]> {
    const removed: string[] = [];
    for (const net of await this.ctx.records.networks.listCniNetworks()) {
      if ((await this.ctx.records.endpoints.endpointsOfNetwork(net.id)).length) continue;
      await this.removeIfUnused(net.id);
      removed.push(`CNI network ${net.name}`);
    }
    return removed;
  }

  /** An attachment with no record: its interface and rules, as the network's driver names them from its id. */
  private async removeUnrecorded(networkId: string, id: string, legacy: CniLegacyAttachment | undefined): Promise<void> {
    if (!legacy) return;
    const driver = this.ctx.driver(legacy.network.driver);
    if (legacy.netns && legacy.ifName && driver.capabilities.sandboxOnlyInterface) removeInterfaceIn(legacy.netns, legacy.ifName);
    let network = await this.ctx.records.networks.getCniNetwork(networkId);
    try {
      network ??= this.networks.cniView(legacy.network);
    } catch {
      return; // a config its driver refuses now (a master gone) made nothing of ours that could be found by it
    }
    const endpoint: EndpointRecord = { id, networkId, sandboxId: '', ifName: '', mac: '', addresses: legacy.addresses, ports: legacy.ports, exposed: [], driverState: {}, created: '' };
    await driver.revokeExternalConnectivity(network, endpoint);
    await driver.deleteEndpoint(network, endpoint);
  }

  /** This host's attachments of a CNI network. */
  list(networkName: string): Promise<EndpointRecord[]> {
    return this.ctx.records.endpoints.endpointsOfNetwork(cniNetworkId(networkName));
  }
}
