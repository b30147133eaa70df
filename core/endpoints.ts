// Endpoints of strand's own sandboxes: addresses from IPAM, host ports
// claimed in the store, the driver's interface made and joined into the
// sandbox, ports published; undone step by step when one fails.
import { StrandError } from '../common/errors.js';
import type { Owner } from '../ipam/index.js';
import { contains, parseCidr, parseIp } from '../ipam/cidr.js';
import type { CoreContext } from './context.js';
import type { Sandboxes } from './sandboxes.js';
import { Undo } from './undo.js';
import { newId } from './ids.js';
import { resolvePorts, type PortRequest } from './ports.js';
import { configureEndpoint } from './sandbox-net.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, SubnetInfo } from './types.js';

export interface ConnectRequest {
  /** Addresses to use instead of the next free ones (one per family at most). */
  addresses?: string[];
  mac?: string;
  ports?: PortRequest[];
  exposed?: { proto: 'tcp' | 'udp'; port: number }[];
}

export class Endpoints {
  constructor(
    private readonly ctx: CoreContext,
    private readonly sandboxes: Sandboxes,
  ) {}

  async connect(network: NetworkRecord, sandbox: SandboxRecord, req: ConnectRequest = {}): Promise<EndpointRecord> {
    const { records } = this.ctx;
    const driver = this.ctx.driver(network.driver);
    if (sandbox.kind === 'container') {
      throw new StrandError('invalid', `sandbox "${sandbox.name}" shares the network namespace of another sandbox; connect that one instead`);
    }
    if ((sandbox.kind === 'host') !== (network.driver === 'host')) {
      throw new StrandError('invalid', sandbox.kind === 'host' ? `sandbox "${sandbox.name}" uses the host's network; it cannot join network "${network.name}"` : `only a sandbox started with --network host can be on the host network`);
    }
    const current = await this.sandboxes.endpointsIn(sandbox);
    if (current.some((e) => e.networkId === network.id)) {
      throw new StrandError('exists', `sandbox "${sandbox.name}" is already connected to network "${network.name}"`);
    }
    const currentDrivers = await Promise.all(current.map(async (e) => (await records.networks.getNetwork(e.networkId))?.driver));
    if (network.driver === 'none' && current.length) throw new StrandError('invalid', `sandbox "${sandbox.name}" has other networks; the none network must be its only one`);
    if (currentDrivers.includes('none')) throw new StrandError('invalid', `sandbox "${sandbox.name}" is on the none network, which excludes all others`);
    if (req.ports?.length && !driver.capabilities.needsIpam) throw new StrandError('invalid', `ports cannot be published on the ${network.driver} network`);

    const endpoint: EndpointRecord = {
      id: newId(),
      networkId: network.id,
      sandboxId: sandbox.id,
      ifName: nextIfName(current),
      mac: '',
      addresses: [],
      ports: [],
      exposed: req.exposed ?? [],
      driverState: {},
      created: new Date().toISOString(),
    };
    return new Undo().run(async (undo) => {
      const owner = { endpointId: endpoint.id, ifName: endpoint.ifName, attachment: { network: network.name, sandbox: sandbox.name } };
      endpoint.addresses = await this.allocate(network, owner, req.addresses ?? [], undo);
      endpoint.mac = req.mac ?? macFor(endpoint.addresses);
      endpoint.ports = await resolvePorts(req.ports ?? [], (proto) => records.endpoints.claimedPorts(proto));
      // Saving claims the host ports: a clash fails here, before any kernel work.
      // Endpoints on a global network are also published cluster-wide, for the other hosts' agents.
      const shared = { global: network.scope === 'global' };
      await records.endpoints.saveEndpoint(endpoint, shared);
      undo.push('forget the endpoint', () => records.endpoints.deleteEndpoint(endpoint));

      const sandboxNs = sandbox.kind === 'netns' ? this.sandboxes.openNs(sandbox) : undefined;
      try {
        endpoint.driverState = await driver.createEndpoint({ network, endpoint, ...(sandboxNs ? { sandboxNs } : {}) });
        undo.push('remove the endpoint interface', () => driver.deleteEndpoint(network, endpoint));
        const join = await driver.join({ network, endpoint, ...(sandboxNs ? { sandboxNs } : {}) });
        undo.push('leave', () => driver.leave(network, endpoint));
        if (sandboxNs && join.srcName) configureEndpoint(this.ctx.host, sandboxNs, endpoint, join);
      } finally {
        sandboxNs?.close();
      }
      await driver.programExternalConnectivity(network, endpoint);
      undo.push('unpublish ports', () => driver.revokeExternalConnectivity(network, endpoint));
      await records.endpoints.saveEndpoint(endpoint, shared);
      return endpoint;
    });
  }

  /**
   * One address from each subnet of the network for `owner`, the wanted one
   * where given (at most one per family); each is released by `undo` if a
   * later step fails.
   */
  async allocate(network: NetworkRecord, owner: Owner, wanted: string[], undo: Undo): Promise<string[]> {
    const { ipam } = this.ctx;
    for (const w of wanted) {
      const fam = w.includes(':') ? 6 : 4;
      if (!network.subnets.some((s) => s.family === fam)) throw new StrandError('invalid', `address ${w} is IPv${fam} but network "${network.name}" has no IPv${fam} subnet`);
    }
    // A wanted address goes to the subnet holding it; one outside them all to its family's subnet, whose IPAM refuses it by name.
    const family = (w: string): 4 | 6 => (w.includes(':') ? 6 : 4);
    const holds = (s: SubnetInfo, w: string): boolean => family(w) === s.family && contains(parseCidr(s.subnet), parseIp(w.split('/')[0]!));
    const out: string[] = [];
    for (const s of network.subnets) {
      const address = wanted.find((w) => holds(s, w)) ?? wanted.find((w) => family(w) === s.family && !network.subnets.some((o) => holds(o, w)));
      const got = await ipam.requestAddress(s.poolId, { owner, ...(address ? { address } : {}) });
      undo.push(`release ${got.address}`, () => ipam.releaseAddress(s.poolId, got.address));
      out.push(got.cidr);
    }
    return out;
  }

  /** Tears an endpoint down; every step succeeds when its object is already gone. */
  async remove(ep: EndpointRecord): Promise<void> {
    const { records, ipam } = this.ctx;
    const network = await records.networks.getNetwork(ep.networkId);
    this.sandboxes.removeInterface(await records.sandboxes.getSandbox(ep.sandboxId), ep.ifName);
    if (network) {
      const driver = this.ctx.driver(network.driver);
      await driver.revokeExternalConnectivity(network, ep);
      await driver.leave(network, ep);
      await driver.deleteEndpoint(network, ep);
    }
    await ipam.releaseByOwner({ endpointId: ep.id, ifName: ep.ifName });
    await records.endpoints.deleteEndpoint(ep);
  }
}

/** eth0, eth1, ...: the lowest name the sandbox does not use yet. */
function nextIfName(current: EndpointRecord[]): string {
  const used = new Set(current.map((e) => e.ifName));
  let n = 0;
  while (used.has(`eth${n}`)) n++;
  return `eth${n}`;
}

/** Like Docker: 02:42 followed by the IPv4 address, so the MAC is stable and tells the address. */
export function macFor(addresses: string[]): string {
  const v4 = addresses.find((a) => !a.includes(':'));
  const bytes = v4 ? [0x02, 0x42, ...v4.split('/')[0]!.split('.').map(Number)] : [0x02, 0x42, ...Array.from({ length: 4 }, () => Math.floor(Math.random() * 256))];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
