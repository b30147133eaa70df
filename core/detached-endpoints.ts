// Endpoints whose sandbox an engine owns (a Docker container, a CNI
// runtime's pod): recorded and made by strand, joined and moved by the
// engine. Their id is the engine's (Docker's EndpointID, a CNI attachment id).
import { StrandError } from '../common/errors.js';
import type { NetNs } from '../netlink/index.js';
import { overlaps, parseCidr } from '../ipam/cidr.js';
import type { CoreContext } from './context.js';
import { Undo } from './undo.js';
import { shortId } from './ids.js';
import { resolvePorts, type PortRequest } from './ports.js';
import { macFor } from './endpoints.js';
import type { Driver, EndpointRecord, JoinInfo, NetworkRecord, PortBinding } from './types.js';

/** An endpoint whose sandbox an engine owns (Docker): its interface is made in the host namespace for the engine to move. */
export interface DetachedEndpointRequest {
  id: string;
  /** Addresses with prefix length, allocated by the engine's IPAM. */
  addresses: string[];
  /** '' to have one derived from the IPv4 address. */
  mac: string;
  exposed?: { proto: 'tcp' | 'udp'; port: number }[];
  /** Host ports to publish with fixed numbers (a CNI runtime's portMappings): claimed when the record is first saved. */
  ports?: PortBinding[];
  /** Kept on the record for the endpoint's maker (a CNI plugin's GC finds its attachments by them). */
  labels?: Record<string, string>;
  /**
   * The engine's namespace when it names one at creation (a CNI runtime): the
   * interface is made right inside it as ifName, sparing the move into it (a
   * kernel grace period of ~16 ms or more).
   */
  sandbox?: { ns: NetNs; ifName: string };
}

export class DetachedEndpoints {
  constructor(private readonly ctx: CoreContext) {}

  /** Records the endpoint and makes its interface; an existing one of that id is returned as is. */
  async create(networkId: string, req: DetachedEndpointRequest): Promise<EndpointRecord> {
    const { records } = this.ctx;
    const network = await records.networks.getNetwork(networkId);
    if (!network) throw new StrandError('not-found', `network ${shortId(networkId)} is unknown to strand (its store lost it?); remove the network and create it again`);
    const known = await records.endpoints.getEndpoint(req.id);
    if (known) return known;
    const driver = this.ctx.driver(network.driver);
    for (const a of req.addresses) {
      const fam = a.includes(':') ? 6 : 4;
      const inSubnet = network.subnets.some((s) => s.family === fam && overlaps(parseCidr(s.subnet), parseCidr(a, { lenient: true })));
      if (!inSubnet) throw new StrandError('invalid', `address ${a} is not in a subnet of network ${network.name} (${network.subnets.map((s) => s.subnet).join(', ')})`);
    }
    const endpoint: EndpointRecord = {
      id: req.id,
      networkId: network.id,
      sandboxId: '',
      ifName: req.sandbox?.ifName ?? '',
      mac: req.mac || macFor(req.addresses),
      addresses: [...req.addresses],
      ports: req.ports ?? [],
      exposed: req.exposed ?? [],
      driverState: {},
      ...(req.labels ? { labels: { ...req.labels } } : {}),
      created: new Date().toISOString(),
    };
    return new Undo().run(async (undo) => {
      // Endpoints on a global network are also published cluster-wide, for the other hosts' agents.
      const shared = { global: network.scope === 'global' };
      await records.endpoints.saveEndpoint(endpoint, shared);
      undo.push('forget the endpoint', () => records.endpoints.deleteEndpoint(endpoint));
      endpoint.driverState = await driver.createEndpoint({ network, endpoint, ...(req.sandbox ? { sandboxNs: req.sandbox.ns } : {}) });
      undo.push('remove the endpoint interface', () => driver.deleteEndpoint(network, endpoint));
      await records.endpoints.saveEndpoint(endpoint);
      return endpoint;
    });
  }

  private async resolve(endpointId: string): Promise<{ network: NetworkRecord; endpoint: EndpointRecord; driver: Driver }> {
    const endpoint = await this.ctx.records.endpoints.getEndpoint(endpointId);
    const network = endpoint && (await this.ctx.records.networks.getNetwork(endpoint.networkId));
    if (!endpoint || !network) throw new StrandError('not-found', `endpoint ${shortId(endpointId)} is unknown to strand; remove the container's endpoint and connect it again`);
    return { network, endpoint, driver: this.ctx.driver(network.driver) };
  }

  get(endpointId: string): Promise<EndpointRecord | undefined> {
    return this.ctx.records.endpoints.getEndpoint(endpointId);
  }

  /** What the engine must set up in its sandbox: the interface to move (none when made inside `sandboxNs`), gateways, routes. */
  async join(endpointId: string, sandboxNs?: NetNs): Promise<{ network: NetworkRecord; endpoint: EndpointRecord; join: JoinInfo }> {
    const { network, endpoint, driver } = await this.resolve(endpointId);
    return { network, endpoint, join: await driver.join({ network, endpoint, ...(sandboxNs ? { sandboxNs } : {}) }) };
  }

  async leave(endpointId: string): Promise<void> {
    const found = await this.ctx.records.endpoints.getEndpoint(endpointId);
    if (!found) return;
    const { network, endpoint, driver } = await this.resolve(endpointId);
    await driver.leave(network, endpoint);
  }

  /** Claims and publishes the endpoint's host ports (dynamic ones picked here); replaces what it published before. */
  async publish(endpointId: string, ports: PortRequest[], exposed: { proto: 'tcp' | 'udp'; port: number }[]): Promise<EndpointRecord> {
    const { records } = this.ctx;
    const { network, driver } = await this.resolve(endpointId);
    await this.unpublish(endpointId);
    const fresh = (await records.endpoints.getEndpoint(endpointId))!;
    fresh.exposed = exposed;
    fresh.ports = await resolvePorts(ports, (proto) => records.endpoints.claimedPorts(proto));
    await records.endpoints.saveEndpoint(fresh);
    try {
      await driver.programExternalConnectivity(network, fresh);
    } catch (err) {
      await driver.revokeExternalConnectivity(network, fresh).catch(() => undefined);
      await records.endpoints.deleteEndpoint(fresh);
      await records.endpoints.saveEndpoint({ ...fresh, ports: [] });
      throw err;
    }
    return fresh;
  }

  async unpublish(endpointId: string): Promise<void> {
    const { records } = this.ctx;
    const found = await records.endpoints.getEndpoint(endpointId);
    if (!found?.ports.length) return;
    const { network, endpoint, driver } = await this.resolve(endpointId);
    await driver.revokeExternalConnectivity(network, endpoint);
    // Deleting and saving again drops the port claims with the ports.
    await records.endpoints.deleteEndpoint(endpoint);
    await records.endpoints.saveEndpoint({ ...endpoint, ports: [] });
  }

  /** Unpublishes, removes the interface and forgets the endpoint; succeeds for one already gone. */
  async delete(endpointId: string): Promise<void> {
    const { records } = this.ctx;
    const endpoint = await records.endpoints.getEndpoint(endpointId);
    if (!endpoint) return;
    const network = await records.networks.getNetwork(endpoint.networkId);
    if (network) {
      const driver = this.ctx.driver(network.driver);
      if (endpoint.ports.length) await driver.revokeExternalConnectivity(network, endpoint);
      await driver.deleteEndpoint(network, endpoint);
    }
    await records.endpoints.deleteEndpoint(endpoint);
  }
}
