// Networks: made with their subnets from IPAM (or an engine's pools), kept in
// the store, removed when nothing uses them. The predefined host and none
// networks are made on first use, as Docker has them on every host.
import { StrandError, unlessNotFound } from '../common/errors.js';
import { contains, overlaps, parseCidr, parseIp } from '../ipam/cidr.js';
import type { CoreContext } from './context.js';
import { Undo } from './undo.js';
import { cniNetworkId, newId, shortId, validateName } from './ids.js';
import type { Driver, NetworkRecord, SubnetInfo } from './types.js';

export interface SubnetRequest {
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  auxAddresses?: Record<string, string>;
}

export interface NetworkRequest {
  name: string;
  driver?: string;
  subnets?: SubnetRequest[];
  ipv6?: boolean;
  internal?: boolean;
  options?: Record<string, string>;
  labels?: Record<string, string>;
  /** The network's id, when an engine chose it (Docker's NetworkID); default a new one. */
  id?: string;
  /** Subnets whose pools an outside IPAM already allocated (Docker's IPAM driver); no IPAM call is made for them. */
  pools?: SubnetInfo[];
}

/**
 * A CNI network as one attachment's ADD sees it. CNI is stateless: every ADD
 * carries the whole config, so the network is made on the first ADD and
 * brought in line by the later ones, and goes with its last attachment.
 */
export interface CniNetworkRequest {
  /** The conflist's network name. */
  name: string;
  driver: string;
  /** The subnets of the attachment's addresses, with the gateway when the network carries it. The IPAM plugin owns the pools. */
  subnets: { subnet: string; gateway?: string }[];
  /** Options in the driver's own words, e.g. { 'bridge.name': 'cni0', masquerade: 'false' }. */
  options: Record<string, string>;
}

/** Labels a CNI network's record with the conflist's network name. */
export const CNI_NETWORK_LABEL = 'cni.network';

/** Networks every host has, like Docker's predefined ones. */
const PREDEFINED: Record<string, string> = { host: 'host', none: 'none' };

export class Networks {
  constructor(private readonly ctx: CoreContext) {}

  async create(req: NetworkRequest): Promise<NetworkRecord> {
    validateName(req.name, 'network');
    const { records } = this.ctx;
    const driver = this.ctx.driver(req.driver ?? 'bridge');
    if (await records.networks.networkNameTaken(req.name)) {
      throw new StrandError('exists', `network "${req.name}" already exists; choose another name or remove it first`);
    }
    if (req.id !== undefined && !/^[0-9a-f]{64}$/.test(req.id)) throw new StrandError('invalid', `invalid network id "${req.id}": use 64 lowercase hex digits`);
    const existing = await records.networks.listNetworks();
    if (req.pools) checkPoolsFree(req.pools, existing);
    if (!driver.capabilities.needsIpam) {
      if (req.subnets?.some((s) => s.subnet) || req.pools?.length || req.ipv6) throw new StrandError('invalid', `the ${driver.name} driver takes no subnets`);
      const twin = existing.find((n) => n.driver === driver.name);
      if (twin) throw new StrandError('exists', `only one ${driver.name} network is allowed; "${twin.name}" is it`);
    }
    const record: NetworkRecord = {
      id: req.id ?? newId(),
      name: req.name,
      driver: driver.name,
      scope: driver.capabilities.scope,
      internal: req.internal ?? false,
      ipv6: req.ipv6 ?? false,
      subnets: [],
      options: { ...(req.options ?? {}) },
      labels: { ...(req.labels ?? {}) },
      driverState: {},
      ...(req.pools ? { externalPools: true } : {}),
      created: new Date().toISOString(),
    };
    return new Undo().run(async (undo) => {
      if (req.pools) record.subnets = req.pools.map((p) => ({ ...p, auxAddresses: { ...p.auxAddresses } }));
      else if (driver.capabilities.needsIpam) record.subnets = await this.allocateSubnets(record, req, undo);
      // IPAM keeps its own pools apart; this also covers subnets an engine's own IPAM chose.
      if (!req.pools) checkPoolsFree(record.subnets, existing);
      record.driverState = driver.validateNetwork(record, existing);
      await driver.createNetwork(record);
      undo.push(`remove the ${driver.name} network's kernel state`, () => driver.deleteNetwork(record));
      await records.networks.createNetwork(record);
      return record;
    });
  }

  private async allocateSubnets(record: NetworkRecord, req: NetworkRequest, undo: Undo): Promise<SubnetInfo[]> {
    const { ipam } = this.ctx;
    const requested = req.subnets?.length ? req.subnets : [{}];
    const v6Given = requested.some((s) => s.subnet?.includes(':'));
    if (req.ipv6 && !v6Given) throw new StrandError('invalid', 'an IPv6 network needs an IPv6 --subnet (there is no default IPv6 pool)');
    if (!req.ipv6 && v6Given) throw new StrandError('invalid', `subnet ${requested.find((s) => s.subnet?.includes(':'))!.subnet} is IPv6: add --ipv6 to enable IPv6 on the network`);
    const space = record.scope === 'global' ? 'global' : 'local';
    const out: SubnetInfo[] = [];
    for (const s of requested) {
      const pool = await ipam.requestPool({
        space,
        ...(s.subnet ? { subnet: s.subnet } : {}),
        ...(s.ipRange ? { ipRange: s.ipRange } : {}),
        ...(s.gateway ? { gateway: s.gateway } : {}),
        ...(s.auxAddresses ? { auxAddresses: s.auxAddresses } : {}),
        options: { network: record.id },
      });
      undo.push(`release pool ${pool.subnet}`, () => ipam.releasePool(pool.id));
      // No gateway given: the pool's first free address becomes it, as with Docker.
      const gw = await ipam.requestAddress(pool.id, { gateway: true });
      if (!pool.gateway) undo.push(`release gateway ${gw.address}`, () => ipam.releaseAddress(pool.id, gw.address));
      out.push({
        subnet: pool.subnet,
        gateway: gw.address,
        ...(pool.ipRange ? { ipRange: pool.ipRange } : {}),
        auxAddresses: pool.auxAddresses,
        poolId: pool.id,
        family: pool.subnet.includes(':') ? 6 : 4,
      });
    }
    return out;
  }

  /** By name, id or id prefix; a predefined network (host, none) is made on first use. */
  async find(ref: string): Promise<NetworkRecord> {
    const net = await this.ctx.records.networks.findNetwork(ref);
    if (net) return net;
    if (PREDEFINED[ref] && this.ctx.hasDriver(PREDEFINED[ref]!)) return this.create({ name: ref, driver: PREDEFINED[ref]! });
    throw new StrandError('not-found', `network "${ref}" not found; "strand network ls" lists them`);
  }

  /** By name, id or id prefix, without making a predefined one; undefined when there is none. */
  lookup(ref: string): Promise<NetworkRecord | undefined> {
    return this.ctx.records.networks.findNetwork(ref);
  }

  /** By full id (an engine's NetworkID, an endpoint's networkId). */
  byId(id: string): Promise<NetworkRecord | undefined> {
    return this.ctx.records.networks.getNetwork(id);
  }

  async list(): Promise<NetworkRecord[]> {
    return (await this.ctx.records.networks.listNetworks()).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The CNI network of this name, made (kernel state and record) if it is
   * new, if its settings or subnets changed, or if the kernel no longer holds
   * what was made (a reboot); otherwise only read. Idempotent.
   */
  async ensureCni(req: CniNetworkRequest): Promise<NetworkRecord> {
    const { records } = this.ctx;
    const driver = this.ctx.driver(req.driver);
    const id = cniNetworkId(req.name);
    const known = await records.networks.getCniNetwork(id);
    const subnets = mergeSubnets(known?.driver === req.driver ? known.subnets : [], req.subnets);
    const same = known !== undefined && known.driver === req.driver && sameJson(known.options, req.options) && known.subnets.length === subnets.length;
    if (same) {
      const now = driver.networkFingerprint?.(known);
      if (now === undefined) await driver.createNetwork(known);
      else if (now !== known.kernelFingerprint) await this.remakeCni(known, driver);
      return known;
    }
    const record = this.cniView(req, subnets, known?.created);
    // Whether strand made the bridge was settled by the first ADD: the bridge it made then is there now, and still its own.
    if (known) {
      if (known.driverState.adopted) record.driverState.adopted = known.driverState.adopted;
      else delete record.driverState.adopted;
    }
    if (!known) {
      await driver.createNetwork(record);
      record.kernelFingerprint = driver.networkFingerprint?.(record);
      // Another attachment may have made it meanwhile: its record stands, the kernel state is the same.
      if (!(await records.networks.createCniNetwork(record))) return (await records.networks.getCniNetwork(id)) ?? record;
      return record;
    }
    await this.remakeCni(record, driver);
    return record;
  }

  /** The record a CNI network request describes, checked by its driver but not made or saved. */
  cniView(req: CniNetworkRequest, subnets = mergeSubnets([], req.subnets), created = new Date().toISOString()): NetworkRecord {
    const driver = this.ctx.driver(req.driver);
    const record: NetworkRecord = {
      id: cniNetworkId(req.name),
      name: req.name,
      driver: driver.name,
      scope: 'local',
      internal: false,
      ipv6: subnets.some((s) => s.family === 6),
      subnets,
      options: { ...req.options },
      labels: { [CNI_NETWORK_LABEL]: req.name },
      driverState: {},
      created,
    };
    // CNI networks may share a bridge (the reference plugins allow it): no clash check against the others.
    record.driverState = driver.validateNetwork(record, []);
    return record;
  }

  private async remakeCni(record: NetworkRecord, driver: Driver): Promise<void> {
    await driver.createNetwork(record);
    const fingerprint = driver.networkFingerprint?.(record);
    if (fingerprint !== undefined) record.kernelFingerprint = fingerprint;
    await this.ctx.records.networks.updateCniNetwork(record);
  }

  /** A CNI network with no attachment left on this host: its kernel state (but what others share) and its record go. */
  async removeCniIfUnused(networkId: string): Promise<void> {
    const { records } = this.ctx;
    const net = await records.networks.getCniNetwork(networkId);
    if (!net || (await records.endpoints.endpointsOfNetwork(net.id)).length) return;
    await this.ctx.driver(net.driver).deleteNetwork(net, await this.othersThan(net));
    await records.networks.deleteCniNetwork(net);
  }

  /** Every network of this host but this one, CNI's among them. */
  private async othersThan(net: NetworkRecord): Promise<NetworkRecord[]> {
    const { records } = this.ctx;
    return [...(await records.networks.listNetworks()), ...(await records.networks.listCniNetworks())].filter((n) => n.id !== net.id);
  }

  async delete(ref: string): Promise<void> {
    const { records, ipam } = this.ctx;
    const net = await records.networks.findNetwork(ref);
    if (!net) throw new StrandError('not-found', `network "${ref}" not found`);
    const eps = await records.endpoints.endpointsOfNetwork(net.id);
    if (eps.length) {
      // A detached endpoint (an engine's or a CNI runtime's) has no sandbox of strand's: its own id names it.
      const names = await Promise.all(eps.map(async (e) => (e.sandboxId ? (await records.sandboxes.getSandbox(e.sandboxId))?.name ?? shortId(e.sandboxId) : `(detached endpoint ${shortId(e.id)})`)));
      throw new StrandError('in-use', `network "${net.name}" still has ${eps.length} endpoint(s), in sandbox(es) ${names.join(', ')}; disconnect or remove them first`);
    }
    if (net.scope === 'global') {
      const elsewhere = await records.endpoints.globalEndpointsOfNetwork(net.id);
      if (elsewhere.length) {
        const hosts = [...new Set(elsewhere.map((e) => e.hostId))];
        throw new StrandError('in-use', `network "${net.name}" still has ${elsewhere.length} endpoint(s) on host(s) ${hosts.join(', ')}; remove them there first`);
      }
    }
    await this.ctx.driver(net.driver).deleteNetwork(net, await this.othersThan(net));
    for (const s of net.externalPools ? [] : net.subnets) {
      const pool = await unlessNotFound(ipam.getPool(s.poolId));
      if (!pool) continue;
      if (s.gateway && !pool.gateway) await unlessNotFound(ipam.releaseAddress(s.poolId, s.gateway));
      await ipam.releasePool(s.poolId);
    }
    await records.networks.deleteNetwork(net);
  }

  /** A cluster network's kernel state on this host only (its last local user left); the network lives on for the other hosts. */
  async removeLocal(network: NetworkRecord): Promise<void> {
    await this.ctx.driver(network.driver).removeLocal?.(network);
  }

  /** Removes every network with no endpoints; returns their names. */
  async prune(): Promise<string[]> {
    const { records } = this.ctx;
    const removed: string[] = [];
    const used = new Set((await records.endpoints.listEndpoints()).map((e) => e.networkId));
    for (const net of await records.networks.listNetworks()) {
      if (used.has(net.id) || PREDEFINED[net.name] === net.driver) continue;
      // A global network is in use while any host has an endpoint on it.
      if (net.scope === 'global' && (await records.endpoints.globalEndpointsOfNetwork(net.id)).length) continue;
      await this.delete(net.id);
      removed.push(net.name);
    }
    return removed;
  }
}

/** Subnets an outside IPAM chose must not overlap a network strand already has. */
function checkPoolsFree(pools: SubnetInfo[], existing: NetworkRecord[]): void {
  for (const p of pools) {
    const c = parseCidr(p.subnet);
    for (const n of existing) {
      const clash = n.subnets.find((s) => overlaps(c, parseCidr(s.subnet)));
      if (clash) throw new StrandError('exists', `subnet ${p.subnet} overlaps subnet ${clash.subnet} of network "${n.name}"; choose another subnet`);
    }
  }
}

/** The known subnets and the new ones an attachment brings (a CNI IPAM plugin with several ranges). */
function mergeSubnets(known: SubnetInfo[], seen: { subnet: string; gateway?: string }[]): SubnetInfo[] {
  const out = [...known];
  for (const s of seen) {
    if (out.some((k) => k.subnet === s.subnet)) continue;
    out.push({ subnet: s.subnet, ...(s.gateway ? { gateway: s.gateway } : {}), auxAddresses: {}, poolId: '', family: s.subnet.includes(':') ? 6 : 4 });
  }
  return out;
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The IPAM pool of the network's subnet that holds this address, if any. */
export function poolOf(network: NetworkRecord | undefined, cidr: string): string | undefined {
  if (!network) return undefined;
  const ip = parseIp(cidr.split('/')[0]!);
  return network.subnets.find((s) => contains(parseCidr(s.subnet), ip))?.poolId;
}
