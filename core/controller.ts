// The runtime core: networks, endpoints and sandboxes. It persists them in
// the store, calls drivers and IPAM, undoes a half-done operation when a step
// fails, and brings the kernel back in line with the store after a crash.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { StrandError, unlessNotFound } from '../common/errors.js';
import { Netlink, createNetns, deleteNetns, openNetns, currentNetns, type NetNs } from '../netlink/index.js';
import { Ipam } from '../ipam/index.js';
import type { Store } from '../store/types.js';
import { Records } from './records.js';
import { Undo } from './undo.js';
import { newId, sandboxNetnsName, shortId, validateName } from './ids.js';
import { resolvePorts, type PortRequest } from './ports.js';
import { configureEndpoint } from './sandbox-net.js';
import { removeSandboxFiles, writeSandboxFiles, writeSandboxHosts } from './sandbox-files.js';
import { overlaps, parseCidr } from '../ipam/cidr.js';
import { processAlive, processStartTime, stopProcess } from './process-info.js';
import type { Driver, EndpointRecord, JoinInfo, NetworkRecord, SandboxRecord, SubnetInfo } from './types.js';
import { DEFAULT_RUN_DIR } from '../common/defaults.js';

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

/** An endpoint whose sandbox an engine owns (Docker): its interface is made in the host namespace for the engine to move. */
export interface DetachedEndpointRequest {
  id: string;
  /** Addresses with prefix length, allocated by the engine's IPAM. */
  addresses: string[];
  /** '' to have one derived from the IPv4 address. */
  mac: string;
  exposed?: { proto: 'tcp' | 'udp'; port: number }[];
  /** Kept on the record for the endpoint's maker (a CNI plugin's GC finds its attachments by them). */
  labels?: Record<string, string>;
  /**
   * The engine's namespace when it names one at creation (a CNI runtime): the
   * interface is made right inside it as ifName, sparing the move into it (a
   * kernel grace period of ~16 ms or more).
   */
  sandbox?: { ns: NetNs; ifName: string };
}

export interface SandboxRequest {
  name?: string;
  /** Share the network namespace of another sandbox (`--network container:NAME`). */
  shareWith?: string;
  /** Use the host's network namespace (`--network host`). */
  host?: boolean;
  hostname?: string;
  dns?: { servers?: string[]; search?: string[]; options?: string[] };
  extraHosts?: { name: string; ip: string }[];
  /** A foreground run's process: gc removes the sandbox once it is gone. */
  ownerPid?: number;
}

export interface ConnectRequest {
  /** Addresses to use instead of the next free ones (one per family at most). */
  addresses?: string[];
  mac?: string;
  ports?: PortRequest[];
  exposed?: { proto: 'tcp' | 'udp'; port: number }[];
}

export interface ControllerOptions {
  store: Store;
  drivers: Driver[];
  /** Identifies this host's records in a shared store; default the host name. */
  hostId?: string;
  /** Where sandbox files live; default /run/strand. */
  runDir?: string;
  /** IPv4 and IPv6 default pools, if not Docker's. */
  ipam?: Ipam;
}

/** Networks every host has, like Docker's predefined ones. */
const PREDEFINED: Record<string, string> = { host: 'host', none: 'none' };

export class Controller {
  readonly records: Records;
  readonly ipam: Ipam;
  readonly hostId: string;
  readonly runDir: string;
  private readonly drivers = new Map<string, Driver>();
  private readonly host: Netlink;

  constructor(options: ControllerOptions) {
    this.hostId = options.hostId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-');
    this.records = new Records(options.store, this.hostId);
    this.runDir = options.runDir ?? DEFAULT_RUN_DIR;
    this.host = Netlink.open();
    this.ipam =
      options.ipam ??
      new Ipam({
        store: options.store,
        hostId: this.hostId,
        // Default pools must not shadow a network the host already routes.
        hostRoutes: async () => this.host.routes.list().filter((r) => r.dst !== 'default').map((r) => r.dst),
      });
    for (const d of options.drivers) this.drivers.set(d.name, d);
  }

  get store(): Store {
    return this.records.store;
  }

  private readonly closers: (() => void | Promise<void>)[] = [];

  /** Registers something to release when the controller closes. */
  onClose(fn: () => void | Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    // Last registered, first released: what was opened later may use what came before.
    for (const fn of this.closers.splice(0).reverse()) await fn();
    this.host.close();
    await this.store.close();
  }

  driver(name: string): Driver {
    const d = this.drivers.get(name);
    // Docker has an ipvlan driver; this kernel has no ipvlan link type, so say that rather than "unknown".
    if (!d && name === 'ipvlan') throw new StrandError('invalid', 'the ipvlan driver is not available: this kernel has no ipvlan link type; use the macvlan driver (--driver macvlan --opt parent=INTERFACE), which also puts containers on the underlay');
    if (!d) throw new StrandError('invalid', `unknown network driver "${name}": use one of ${[...this.drivers.keys()].join(', ')}`);
    return d;
  }

  // ---- networks ----

  async createNetwork(req: NetworkRequest): Promise<NetworkRecord> {
    validateName(req.name, 'network');
    const driver = this.driver(req.driver ?? 'bridge');
    if (await this.records.networkNameTaken(req.name)) {
      throw new StrandError('exists', `network "${req.name}" already exists; choose another name or remove it first`);
    }
    if (req.id !== undefined && !/^[0-9a-f]{64}$/.test(req.id)) throw new StrandError('invalid', `invalid network id "${req.id}": use 64 lowercase hex digits`);
    const existing = await this.records.listNetworks();
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
      await this.records.createNetwork(record);
      return record;
    });
  }

  private async allocateSubnets(record: NetworkRecord, req: NetworkRequest, undo: Undo): Promise<SubnetInfo[]> {
    const requested = req.subnets?.length ? req.subnets : [{}];
    const v6Given = requested.some((s) => s.subnet?.includes(':'));
    if (req.ipv6 && !v6Given) throw new StrandError('invalid', 'an IPv6 network needs an IPv6 --subnet (there is no default IPv6 pool)');
    if (!req.ipv6 && v6Given) throw new StrandError('invalid', `subnet ${requested.find((s) => s.subnet?.includes(':'))!.subnet} is IPv6: add --ipv6 to enable IPv6 on the network`);
    const space = record.scope === 'global' ? 'global' : 'local';
    const out: SubnetInfo[] = [];
    for (const s of requested) {
      const pool = await this.ipam.requestPool({
        space,
        ...(s.subnet ? { subnet: s.subnet } : {}),
        ...(s.ipRange ? { ipRange: s.ipRange } : {}),
        ...(s.gateway ? { gateway: s.gateway } : {}),
        ...(s.auxAddresses ? { auxAddresses: s.auxAddresses } : {}),
        options: { network: record.id },
      });
      undo.push(`release pool ${pool.subnet}`, () => this.ipam.releasePool(pool.id));
      // No gateway given: the pool's first free address becomes it, as with Docker.
      const gw = await this.ipam.requestAddress(pool.id, { gateway: true });
      if (!pool.gateway) undo.push(`release gateway ${gw.address}`, () => this.ipam.releaseAddress(pool.id, gw.address));
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

  async findNetwork(ref: string): Promise<NetworkRecord> {
    const net = await this.records.findNetwork(ref);
    if (net) return net;
    if (PREDEFINED[ref] && this.drivers.has(PREDEFINED[ref]!)) return this.createNetwork({ name: ref, driver: PREDEFINED[ref]! });
    throw new StrandError('not-found', `network "${ref}" not found; "strand network ls" lists them`);
  }

  async listNetworks(): Promise<NetworkRecord[]> {
    return (await this.records.listNetworks()).sort((a, b) => a.name.localeCompare(b.name));
  }

  endpointsOf(network: NetworkRecord): Promise<EndpointRecord[]> {
    return this.records.endpointsOfNetwork(network.id);
  }

  async deleteNetwork(ref: string): Promise<void> {
    const net = await this.records.findNetwork(ref);
    if (!net) throw new StrandError('not-found', `network "${ref}" not found`);
    const eps = await this.endpointsOf(net);
    if (eps.length) {
      // A detached endpoint (an engine's or a CNI runtime's) has no sandbox of strand's: its own id names it.
      const names = await Promise.all(eps.map(async (e) => (e.sandboxId ? (await this.records.getSandbox(e.sandboxId))?.name ?? shortId(e.sandboxId) : `(detached endpoint ${shortId(e.id)})`)));
      throw new StrandError('in-use', `network "${net.name}" still has ${eps.length} endpoint(s), in sandbox(es) ${names.join(', ')}; disconnect or remove them first`);
    }
    if (net.scope === 'global') {
      const elsewhere = await this.records.globalEndpointsOfNetwork(net.id);
      if (elsewhere.length) {
        const hosts = [...new Set(elsewhere.map((e) => e.hostId))];
        throw new StrandError('in-use', `network "${net.name}" still has ${elsewhere.length} endpoint(s) on host(s) ${hosts.join(', ')}; remove them there first`);
      }
    }
    await this.driver(net.driver).deleteNetwork(net);
    for (const s of net.externalPools ? [] : net.subnets) {
      const pool = await unlessNotFound(this.ipam.getPool(s.poolId));
      if (!pool) continue;
      if (s.gateway && !pool.gateway) await unlessNotFound(this.ipam.releaseAddress(s.poolId, s.gateway));
      await this.ipam.releasePool(s.poolId);
    }
    await this.records.deleteNetwork(net);
  }

  /** A cluster network's kernel state on this host only (its last local user left); the network lives on for the other hosts. */
  async removeLocalNetwork(network: NetworkRecord): Promise<void> {
    await this.driver(network.driver).removeLocal?.(network);
  }

  /** Removes every network with no endpoints; returns their names. */
  async pruneNetworks(): Promise<string[]> {
    const removed: string[] = [];
    const used = new Set((await this.records.listEndpoints()).map((e) => e.networkId));
    for (const net of await this.records.listNetworks()) {
      if (used.has(net.id) || PREDEFINED[net.name] === net.driver) continue;
      // A global network is in use while any host has an endpoint on it.
      if (net.scope === 'global' && (await this.records.globalEndpointsOfNetwork(net.id)).length) continue;
      await this.deleteNetwork(net.id);
      removed.push(net.name);
    }
    return removed;
  }

  // ---- sandboxes ----

  async createSandbox(req: SandboxRequest): Promise<SandboxRecord> {
    const id = newId();
    const name = req.name ?? shortId(id);
    validateName(name, 'sandbox');
    if (await this.records.sandboxNameTaken(name)) throw new StrandError('exists', `a sandbox named "${name}" already exists; choose another name or "strand rm ${name}"`);
    let kind: SandboxRecord['kind'] = 'netns';
    let netnsPath = `/run/netns/${sandboxNetnsName(id)}`;
    let sharesWith: string | undefined;
    if (req.host) {
      kind = 'host';
      netnsPath = '';
    } else if (req.shareWith) {
      const other = await this.findSandbox(req.shareWith);
      if (other.kind === 'container') throw new StrandError('invalid', `sandbox "${other.name}" itself shares another's namespace; name that one instead`);
      kind = 'container';
      netnsPath = other.netnsPath;
      sharesWith = other.id;
    }
    const record: SandboxRecord = {
      id,
      name,
      kind,
      netnsPath,
      ...(sharesWith ? { sharesWith } : {}),
      hostname: req.hostname ?? (kind === 'host' ? hostname() : shortId(id)),
      dns: { servers: req.dns?.servers ?? [], search: req.dns?.search ?? [], options: req.dns?.options ?? [] },
      extraHosts: req.extraHosts ?? [],
      ...(req.ownerPid ? { ownerPid: req.ownerPid, ownerStart: processStartTime(req.ownerPid) ?? '' } : {}),
      created: new Date().toISOString(),
    };
    return new Undo().run(async (undo) => {
      if (kind === 'netns') {
        const ns = createNetns(sandboxNetnsName(id));
        undo.push('remove the namespace', () => deleteNetns(sandboxNetnsName(id)));
        const nl = Netlink.open(ns);
        try {
          nl.links.set('lo', { up: true });
        } finally {
          nl.close();
          ns.close();
        }
      }
      writeSandboxFiles(this.runDir, record, []);
      undo.push('remove sandbox files', () => removeSandboxFiles(this.runDir, id));
      await this.records.createSandbox(record);
      return record;
    });
  }

  async findSandbox(ref: string): Promise<SandboxRecord> {
    const sb = await this.records.findSandbox(ref);
    if (!sb) throw new StrandError('not-found', `sandbox "${ref}" not found; "strand ps" lists them`);
    return sb;
  }

  async listSandboxes(): Promise<SandboxRecord[]> {
    return (await this.records.listSandboxes()).sort((a, b) => a.created.localeCompare(b.created));
  }

  endpointsIn(sandbox: SandboxRecord): Promise<EndpointRecord[]> {
    return this.records.endpointsOfSandbox(sandbox.id);
  }

  /** Opens the sandbox's network namespace (the controller's own for host sandboxes). */
  openSandboxNs(sandbox: SandboxRecord): NetNs {
    return sandbox.netnsPath ? openNetns(sandbox.netnsPath) : currentNetns();
  }

  async setSandboxPid(sandbox: SandboxRecord, pid: number): Promise<void> {
    sandbox.pid = pid;
    const start = processStartTime(pid);
    if (start) sandbox.pidStart = start;
    await this.records.updateSandbox(sandbox);
  }

  /** Whether the sandbox's first process still runs. */
  sandboxRunning(sandbox: SandboxRecord): boolean {
    return sandbox.pid !== undefined && processAlive(sandbox.pid, sandbox.pidStart);
  }

  /** Stops the sandbox's first process (TERM, then KILL after the grace period). */
  async stopSandbox(sandbox: SandboxRecord, graceMs?: number): Promise<void> {
    if (sandbox.pid !== undefined) await stopProcess(sandbox.pid, sandbox.pidStart, graceMs);
  }

  /** Disconnects every endpoint, removes the namespace and files; succeeds for a half-removed sandbox. */
  async removeSandbox(ref: string | SandboxRecord): Promise<void> {
    const sb = typeof ref === 'string' ? await this.findSandbox(ref) : ref;
    const sharers = (await this.records.listSandboxes()).filter((s) => s.sharesWith === sb.id);
    if (sharers.length) {
      throw new StrandError('in-use', `sandbox "${sb.name}" shares its network namespace with ${sharers.map((s) => s.name).join(', ')}; remove those first`);
    }
    for (const ep of await this.endpointsIn(sb)) await this.removeEndpoint(ep);
    if (sb.kind === 'netns') deleteNetns(sandboxNetnsName(sb.id));
    removeSandboxFiles(this.runDir, sb.id);
    await this.records.deleteSandbox(sb);
  }

  // ---- endpoints ----

  async connect(networkRef: string, sandboxRef: string, req: ConnectRequest = {}): Promise<EndpointRecord> {
    const network = await this.findNetwork(networkRef);
    const sandbox = await this.findSandbox(sandboxRef);
    const driver = this.driver(network.driver);
    if (sandbox.kind === 'container') {
      throw new StrandError('invalid', `sandbox "${sandbox.name}" shares the network namespace of another sandbox; connect that one instead`);
    }
    if ((sandbox.kind === 'host') !== (network.driver === 'host')) {
      throw new StrandError('invalid', sandbox.kind === 'host' ? `sandbox "${sandbox.name}" uses the host's network; it cannot join network "${network.name}"` : `only a sandbox started with --network host can be on the host network`);
    }
    const current = await this.endpointsIn(sandbox);
    if (current.some((e) => e.networkId === network.id)) {
      throw new StrandError('exists', `sandbox "${sandbox.name}" is already connected to network "${network.name}"`);
    }
    const currentDrivers = await Promise.all(current.map(async (e) => (await this.records.getNetwork(e.networkId))?.driver));
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
      await this.allocateAddresses(network, sandbox, endpoint, req.addresses ?? [], undo);
      endpoint.mac = req.mac ?? macFor(endpoint.addresses);
      endpoint.ports = await resolvePorts(req.ports ?? [], (proto) => this.records.claimedPorts(proto));
      // Saving claims the host ports: a clash fails here, before any kernel work.
      // Endpoints on a global network are also published cluster-wide, for the other hosts' agents.
      const shared = { global: network.scope === 'global' };
      await this.records.saveEndpoint(endpoint, shared);
      undo.push('forget the endpoint', () => this.records.deleteEndpoint(endpoint));

      const sandboxNs = sandbox.kind === 'netns' ? this.openSandboxNs(sandbox) : undefined;
      try {
        endpoint.driverState = await driver.createEndpoint({ network, endpoint, ...(sandboxNs ? { sandboxNs } : {}) });
        undo.push('remove the endpoint interface', () => driver.deleteEndpoint(network, endpoint));
        const join = await driver.join({ network, endpoint, ...(sandboxNs ? { sandboxNs } : {}) });
        undo.push('leave', () => driver.leave(network, endpoint));
        if (sandboxNs && join.srcName) configureEndpoint(this.host, sandboxNs, endpoint, join);
      } finally {
        sandboxNs?.close();
      }
      await driver.programExternalConnectivity(network, endpoint);
      undo.push('unpublish ports', () => driver.revokeExternalConnectivity(network, endpoint));
      await this.records.saveEndpoint(endpoint, shared);
      await this.refreshSandboxFiles(sandbox);
      return endpoint;
    });
  }

  private async allocateAddresses(network: NetworkRecord, sandbox: SandboxRecord, endpoint: EndpointRecord, wanted: string[], undo: Undo): Promise<void> {
    const owner = { endpointId: endpoint.id, ifName: endpoint.ifName, attachment: { network: network.name, sandbox: sandbox.name } };
    for (const w of wanted) {
      const fam = w.includes(':') ? 6 : 4;
      if (!network.subnets.some((s) => s.family === fam)) throw new StrandError('invalid', `address ${w} is IPv${fam} but network "${network.name}" has no IPv${fam} subnet`);
    }
    for (const s of network.subnets) {
      const address = wanted.find((w) => (w.includes(':') ? 6 : 4) === s.family);
      const got = await this.ipam.requestAddress(s.poolId, { owner, ...(address ? { address } : {}) });
      undo.push(`release ${got.address}`, () => this.ipam.releaseAddress(s.poolId, got.address));
      endpoint.addresses.push(got.cidr);
    }
  }

  async disconnect(networkRef: string, sandboxRef: string): Promise<void> {
    const network = await this.findNetwork(networkRef);
    const sandbox = await this.findSandbox(sandboxRef);
    const ep = (await this.endpointsIn(sandbox)).find((e) => e.networkId === network.id);
    if (!ep) throw new StrandError('not-found', `sandbox "${sandbox.name}" is not connected to network "${network.name}"`);
    await this.removeEndpoint(ep);
    await this.refreshSandboxFiles(sandbox);
  }

  /**
   * Takes an interface out of a sandbox of strand's, if the sandbox still has
   * its namespace: a veth would go with its host end anyway, but a macvlan
   * lives only inside the sandbox.
   */
  removeSandboxInterface(sandbox: SandboxRecord | undefined, ifName: string): void {
    if (sandbox?.kind !== 'netns' || !existsSync(sandbox.netnsPath)) return;
    const ns = this.openSandboxNs(sandbox);
    const nl = Netlink.open(ns);
    try {
      nl.links.delete(ifName, { missingOk: true });
    } finally {
      nl.close();
      ns.close();
    }
  }

  /** Tears an endpoint down; every step succeeds when its object is already gone. */
  private async removeEndpoint(ep: EndpointRecord): Promise<void> {
    const network = await this.records.getNetwork(ep.networkId);
    this.removeSandboxInterface(await this.records.getSandbox(ep.sandboxId), ep.ifName);
    if (network) {
      const driver = this.driver(network.driver);
      await driver.revokeExternalConnectivity(network, ep);
      await driver.leave(network, ep);
      await driver.deleteEndpoint(network, ep);
    }
    await this.ipam.releaseByOwner({ endpointId: ep.id, ifName: ep.ifName });
    await this.records.deleteEndpoint(ep);
  }

  private async refreshSandboxFiles(sandbox: SandboxRecord): Promise<void> {
    const addrs = (await this.endpointsIn(sandbox)).flatMap((e) => e.addresses);
    writeSandboxHosts(this.runDir, sandbox, addrs);
  }

  // ---- detached endpoints (an engine owns the sandbox) ----

  /** Records the endpoint and makes its interface in the host namespace; an existing one of that id is returned as is. */
  async createDetachedEndpoint(networkId: string, req: DetachedEndpointRequest): Promise<EndpointRecord> {
    const network = await this.records.getNetwork(networkId);
    if (!network) throw new StrandError('not-found', `network ${shortId(networkId)} is unknown to strand (its store lost it?); remove the network and create it again`);
    const known = await this.records.getEndpoint(req.id);
    if (known) return known;
    const driver = this.driver(network.driver);
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
      ports: [],
      exposed: req.exposed ?? [],
      driverState: {},
      ...(req.labels ? { labels: { ...req.labels } } : {}),
      created: new Date().toISOString(),
    };
    return new Undo().run(async (undo) => {
      // Endpoints on a global network are also published cluster-wide, for the other hosts' agents.
      const shared = { global: network.scope === 'global' };
      await this.records.saveEndpoint(endpoint, shared);
      undo.push('forget the endpoint', () => this.records.deleteEndpoint(endpoint));
      endpoint.driverState = await driver.createEndpoint({ network, endpoint, ...(req.sandbox ? { sandboxNs: req.sandbox.ns } : {}) });
      undo.push('remove the endpoint interface', () => driver.deleteEndpoint(network, endpoint));
      await this.records.saveEndpoint(endpoint);
      return endpoint;
    });
  }

  private async detached(endpointId: string): Promise<{ network: NetworkRecord; endpoint: EndpointRecord; driver: Driver }> {
    const endpoint = await this.records.getEndpoint(endpointId);
    const network = endpoint && (await this.records.getNetwork(endpoint.networkId));
    if (!endpoint || !network) throw new StrandError('not-found', `endpoint ${shortId(endpointId)} is unknown to strand; remove the container's endpoint and connect it again`);
    return { network, endpoint, driver: this.driver(network.driver) };
  }

  async getDetachedEndpoint(endpointId: string): Promise<EndpointRecord | undefined> {
    return this.records.getEndpoint(endpointId);
  }

  /** What the engine must set up in its sandbox: the interface to move (none when made inside `sandboxNs`), gateways, routes. */
  async joinDetached(endpointId: string, sandboxNs?: NetNs): Promise<{ network: NetworkRecord; endpoint: EndpointRecord; join: JoinInfo }> {
    const { network, endpoint, driver } = await this.detached(endpointId);
    return { network, endpoint, join: await driver.join({ network, endpoint, ...(sandboxNs ? { sandboxNs } : {}) }) };
  }

  async leaveDetached(endpointId: string): Promise<void> {
    const found = await this.records.getEndpoint(endpointId);
    if (!found) return;
    const { network, endpoint, driver } = await this.detached(endpointId);
    await driver.leave(network, endpoint);
  }

  /** Claims and publishes the endpoint's host ports (dynamic ones picked here); replaces what it published before. */
  async publishDetached(endpointId: string, ports: PortRequest[], exposed: { proto: 'tcp' | 'udp'; port: number }[]): Promise<EndpointRecord> {
    const { network, driver } = await this.detached(endpointId);
    await this.unpublishDetached(endpointId);
    const fresh = (await this.records.getEndpoint(endpointId))!;
    fresh.exposed = exposed;
    fresh.ports = await resolvePorts(ports, (proto) => this.records.claimedPorts(proto));
    await this.records.saveEndpoint(fresh);
    try {
      await driver.programExternalConnectivity(network, fresh);
    } catch (err) {
      await driver.revokeExternalConnectivity(network, fresh).catch(() => undefined);
      await this.records.deleteEndpoint(fresh);
      await this.records.saveEndpoint({ ...fresh, ports: [] });
      throw err;
    }
    return fresh;
  }

  async unpublishDetached(endpointId: string): Promise<void> {
    const found = await this.records.getEndpoint(endpointId);
    if (!found?.ports.length) return;
    const { network, endpoint, driver } = await this.detached(endpointId);
    await driver.revokeExternalConnectivity(network, endpoint);
    // Deleting and saving again drops the port claims with the ports.
    await this.records.deleteEndpoint(endpoint);
    await this.records.saveEndpoint({ ...endpoint, ports: [] });
  }

  /** Unpublishes, removes the interface and forgets the endpoint; succeeds for one already gone. */
  async deleteDetachedEndpoint(endpointId: string): Promise<void> {
    const endpoint = await this.records.getEndpoint(endpointId);
    if (!endpoint) return;
    const network = await this.records.getNetwork(endpoint.networkId);
    if (network) {
      const driver = this.driver(network.driver);
      if (endpoint.ports.length) await driver.revokeExternalConnectivity(network, endpoint);
      await driver.deleteEndpoint(network, endpoint);
    }
    await this.records.deleteEndpoint(endpoint);
  }

  // ---- crash recovery ----

  /**
   * Makes the kernel match the store: recreates what persisted networks need,
   * removes sandboxes whose owner died, and what no record owns.
   */
  async reconcile(): Promise<{ restored: string[]; removedSandboxes: string[]; removedOrphans: string[]; releasedAddresses: string[] }> {
    const removedSandboxes = await this.gcSandboxes();
    const networks = await this.records.listNetworks();
    const endpoints = await this.records.listEndpoints();
    const restored: string[] = [];
    for (const net of networks) {
      await this.driver(net.driver).restoreNetwork(net, endpoints.filter((e) => e.networkId === net.id));
      restored.push(net.name);
    }
    const removedOrphans: string[] = [];
    for (const d of this.drivers.values()) removedOrphans.push(...((await d.orphans?.(networks, endpoints)) ?? []));
    const live = new Set(endpoints.map((e) => e.id));
    const released = await this.ipam.gc((owner) => (owner.endpointId ? live.has(owner.endpointId) : true));
    return { restored, removedSandboxes, removedOrphans, releasedAddresses: released.map((a) => a.address) };
  }

  /** Removes sandboxes whose foreground owner is gone or whose namespace vanished. */
  async gcSandboxes(): Promise<string[]> {
    const removed: string[] = [];
    const all = await this.records.listSandboxes();
    // Sharers first, so their targets are free to go.
    for (const sb of [...all].sort((a, b) => Number(!!b.sharesWith) - Number(!!a.sharesWith))) {
      const ownerGone = sb.ownerPid !== undefined && !processAlive(sb.ownerPid, sb.ownerStart);
      const nsGone = sb.kind === 'netns' && !existsSync(sb.netnsPath);
      const targetGone = sb.sharesWith !== undefined && !all.some((o) => o.id === sb.sharesWith && !removed.includes(o.name));
      if (ownerGone || nsGone || targetGone) {
        // The command of a run whose strand died would otherwise keep going, cut off.
        await this.stopSandbox(sb, 1000);
        await this.removeSandbox(sb);
        removed.push(sb.name);
      }
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

/** eth0, eth1, ...: the lowest name the sandbox does not use yet. */
function nextIfName(current: EndpointRecord[]): string {
  const used = new Set(current.map((e) => e.ifName));
  let n = 0;
  while (used.has(`eth${n}`)) n++;
  return `eth${n}`;
}

/** Like Docker: 02:42 followed by the IPv4 address, so the MAC is stable and tells the address. */
function macFor(addresses: string[]): string {
  const v4 = addresses.find((a) => !a.includes(':'));
  const bytes = v4 ? [0x02, 0x42, ...v4.split('/')[0]!.split('.').map(Number)] : [0x02, 0x42, ...Array.from({ length: 4 }, () => Math.floor(Math.random() * 256))];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
