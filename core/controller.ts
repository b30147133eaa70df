// The runtime core's one door: networks, endpoints and sandboxes as Docker's
// CNM has them. Each object's code is a file of its own (networks.ts,
// endpoints.ts, detached-endpoints.ts, sandboxes.ts, reconcile.ts); this
// facade composes them where an operation spans two (connecting a sandbox to
// a network, removing a sandbox with its endpoints). Records and IPAM stay
// inside: every front door attaches through these methods.
import { hostname } from 'node:os';
import { DEFAULT_RUN_DIR } from '../common/defaults.js';
import { StrandError } from '../common/errors.js';
import { Netlink, type NetNs } from '../netlink/index.js';
import { Ipam, type Owner } from '../ipam/index.js';
import type { Store } from '../store/types.js';
import { Records } from './records/index.js';
import { Undo } from './undo.js';
import { CoreContext } from './context.js';
import { Networks, type NetworkRequest } from './networks.js';
import { Sandboxes, type SandboxRequest } from './sandboxes.js';
import { Endpoints, type ConnectRequest } from './endpoints.js';
import { DetachedEndpoints, type DetachedEndpointRequest } from './detached-endpoints.js';
import { Reconciler, type ReconcileReport } from './reconcile.js';
import { EndpointReclaim, type Reclaimed } from './endpoint-reclaim.js';
import { CniAttachments, type CniAttachRequest, type CniLegacyAttachment } from './cni-attachments.js';
import type { PortRequest } from './ports.js';
import type { DriverCapabilities, Driver, EndpointRecord, JoinInfo, NetworkRecord, SandboxRecord } from './types.js';

export type { NetworkRequest, SubnetRequest } from './networks.js';
export type { SandboxRequest } from './sandboxes.js';
export type { ConnectRequest } from './endpoints.js';
export type { DetachedEndpointRequest } from './detached-endpoints.js';
export type { CniAttachRequest, CniLegacyAttachment } from './cni-attachments.js';
export type { CniNetworkRequest } from './networks.js';
export { CNI_LABEL } from './ids.js';

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

export class Controller {
  readonly hostId: string;
  readonly runDir: string;
  private readonly records: Records;
  private readonly ipam: Ipam;
  private readonly host: Netlink;
  private readonly ctx: CoreContext;
  private readonly networks: Networks;
  private readonly sandboxes: Sandboxes;
  private readonly endpoints: Endpoints;
  private readonly detached: DetachedEndpoints;
  private readonly reconciler: Reconciler;
  private readonly reclaim: EndpointReclaim;
  private readonly cni: CniAttachments;
  private readonly closers: (() => void | Promise<void>)[] = [];

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
    this.ctx = new CoreContext(this.records, this.ipam, this.host, this.hostId, this.runDir, new Map(options.drivers.map((d) => [d.name, d])));
    this.networks = new Networks(this.ctx);
    this.sandboxes = new Sandboxes(this.ctx);
    this.endpoints = new Endpoints(this.ctx, this.sandboxes);
    this.detached = new DetachedEndpoints(this.ctx);
    this.cni = new CniAttachments(this.ctx, this.networks, this.detached);
    this.reconciler = new Reconciler(this.ctx, this.sandboxes, (sb) => this.removeSandbox(sb), () => this.cni.sweepUnused());
    this.reclaim = new EndpointReclaim(this.ctx, this.sandboxes, this.detached, (ep) => this.disconnectEndpoint(ep));
  }

  /** The store this host's state lives in (the agent and the cluster services share it). */
  get store(): Store {
    return this.records.store;
  }

  /**
   * IPAM's own verbs, for the front doors that speak them (Docker's
   * IpamDriver) and the dead-host reaper; attaching never needs it.
   */
  ipamService(): Ipam {
    return this.ipam;
  }

  /** Registers something to release when the controller closes. */
  onClose(fn: () => void | Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    // Last registered, first released: what was opened later may use what came before.
    for (const fn of this.closers.splice(0).reverse()) await fn();
    this.cni.close();
    this.host.close();
    await this.store.close();
  }

  driverCapabilities(name: string): DriverCapabilities {
    return this.ctx.driver(name).capabilities;
  }

  // ---- networks ----

  createNetwork(req: NetworkRequest): Promise<NetworkRecord> {
    return this.networks.create(req);
  }

  /** By name, id or id prefix; the predefined host and none networks are made on first use. */
  findNetwork(ref: string): Promise<NetworkRecord> {
    return this.networks.find(ref);
  }

  /** By name, id or id prefix; undefined when there is none. */
  lookupNetwork(ref: string): Promise<NetworkRecord | undefined> {
    return this.networks.lookup(ref);
  }

  networkById(id: string): Promise<NetworkRecord | undefined> {
    return this.networks.byId(id);
  }

  listNetworks(): Promise<NetworkRecord[]> {
    return this.networks.list();
  }

  endpointsOf(network: NetworkRecord): Promise<EndpointRecord[]> {
    return this.records.endpoints.endpointsOfNetwork(network.id);
  }

  /** Every endpoint recorded on this host, attached or detached. */
  listEndpoints(): Promise<EndpointRecord[]> {
    return this.records.endpoints.listEndpoints();
  }

  deleteNetwork(ref: string): Promise<void> {
    return this.networks.delete(ref);
  }

  /** A cluster network's kernel state on this host only (its last local user left); the network lives on for the other hosts. */
  removeLocalNetwork(network: NetworkRecord): Promise<void> {
    return this.networks.removeLocal(network);
  }

  /** The kernel state of a network another host removed from the store (its records are gone already). */
  async removeNetworkState(network: NetworkRecord): Promise<void> {
    await this.ctx.driver(network.driver).deleteNetwork(network);
  }

  /** Removes every network with no endpoints; returns their names. */
  pruneNetworks(): Promise<string[]> {
    return this.networks.prune();
  }

  // ---- sandboxes ----

  createSandbox(req: SandboxRequest): Promise<SandboxRecord> {
    return this.sandboxes.create(req);
  }

  findSandbox(ref: string): Promise<SandboxRecord> {
    return this.sandboxes.find(ref);
  }

  sandboxById(id: string): Promise<SandboxRecord | undefined> {
    return this.sandboxes.byId(id);
  }

  listSandboxes(): Promise<SandboxRecord[]> {
    return this.sandboxes.list();
  }

  endpointsIn(sandbox: SandboxRecord): Promise<EndpointRecord[]> {
    return this.sandboxes.endpointsIn(sandbox);
  }

  /** Opens the sandbox's network namespace (the controller's own for host sandboxes). */
  openSandboxNs(sandbox: SandboxRecord): NetNs {
    return this.sandboxes.openNs(sandbox);
  }

  setSandboxPid(sandbox: SandboxRecord, pid: number): Promise<void> {
    return this.sandboxes.setPid(sandbox, pid);
  }

  /** Whether the sandbox's first process still runs. */
  sandboxRunning(sandbox: SandboxRecord): boolean {
    return this.sandboxes.running(sandbox);
  }

  /** Stops the sandbox's first process (TERM, then KILL after the grace period). */
  stopSandbox(sandbox: SandboxRecord, graceMs?: number): Promise<void> {
    return this.sandboxes.stop(sandbox, graceMs);
  }

  /** Disconnects every endpoint, removes the namespace and files; succeeds for a half-removed sandbox. */
  async removeSandbox(ref: string | SandboxRecord): Promise<void> {
    const sb = typeof ref === 'string' ? await this.findSandbox(ref) : ref;
    await this.sandboxes.checkRemovable(sb);
    for (const ep of await this.sandboxes.endpointsIn(sb)) await this.endpoints.remove(ep);
    await this.sandboxes.remove(sb);
  }

  // ---- endpoints of strand's sandboxes ----

  async connect(networkRef: string, sandboxRef: string, req: ConnectRequest = {}): Promise<EndpointRecord> {
    const network = await this.findNetwork(networkRef);
    const sandbox = await this.findSandbox(sandboxRef);
    const endpoint = await this.endpoints.connect(network, sandbox, req);
    await this.sandboxes.refreshFiles(sandbox);
    return endpoint;
  }

  async disconnect(networkRef: string, sandboxRef: string): Promise<void> {
    const network = await this.findNetwork(networkRef);
    const sandbox = await this.findSandbox(sandboxRef);
    const ep = (await this.endpointsIn(sandbox)).find((e) => e.networkId === network.id);
    if (!ep) throw new StrandError('not-found', `sandbox "${sandbox.name}" is not connected to network "${network.name}"`);
    await this.disconnectEndpoint(ep);
  }

  private async disconnectEndpoint(ep: EndpointRecord): Promise<void> {
    await this.endpoints.remove(ep);
    const sandbox = await this.sandboxes.byId(ep.sandboxId);
    if (sandbox) await this.sandboxes.refreshFiles(sandbox);
  }

  /**
   * Addresses for an endpoint an engine will make (one per subnet of the
   * network, the wanted ones where given); all released again if one fails.
   */
  async allocateAddresses(network: NetworkRecord, owner: Owner, wanted: string[] = []): Promise<string[]> {
    return new Undo().run((undo) => this.endpoints.allocate(network, owner, wanted, undo));
  }

  /** Frees every address held by the owner (an endpoint id, with its interface when given). */
  async releaseAddresses(owner: Owner): Promise<void> {
    await this.ipam.releaseByOwner(owner);
  }

  // ---- detached endpoints (an engine owns the sandbox) ----

  /** Records the endpoint and makes its interface in the host namespace; an existing one of that id is returned as is. */
  createDetachedEndpoint(networkId: string, req: DetachedEndpointRequest): Promise<EndpointRecord> {
    return this.detached.create(networkId, req);
  }

  getDetachedEndpoint(endpointId: string): Promise<EndpointRecord | undefined> {
    return this.detached.get(endpointId);
  }

  /** Whether the endpoint of a global network is published cluster-wide, for the other hosts' agents. */
  async isPublishedToCluster(endpoint: EndpointRecord): Promise<boolean> {
    return (await this.records.endpoints.getGlobalEndpoint(endpoint.networkId, endpoint.id)) !== undefined;
  }

  /** What the engine must set up in its sandbox: the interface to move (none when made inside `sandboxNs`), gateways, routes. */
  joinDetached(endpointId: string, sandboxNs?: NetNs): Promise<{ network: NetworkRecord; endpoint: EndpointRecord; join: JoinInfo }> {
    return this.detached.join(endpointId, sandboxNs);
  }

  leaveDetached(endpointId: string): Promise<void> {
    return this.detached.leave(endpointId);
  }

  /** Claims and publishes the endpoint's host ports (dynamic ones picked here); replaces what it published before. */
  publishDetached(endpointId: string, ports: PortRequest[], exposed: { proto: 'tcp' | 'udp'; port: number }[]): Promise<EndpointRecord> {
    return this.detached.publish(endpointId, ports, exposed);
  }

  unpublishDetached(endpointId: string): Promise<void> {
    return this.detached.unpublish(endpointId);
  }

  /** Unpublishes, removes the interface and forgets the endpoint; succeeds for one already gone. */
  deleteDetachedEndpoint(endpointId: string): Promise<void> {
    return this.detached.delete(endpointId);
  }

  // ---- CNI attachments (a stateless runtime owns the sandbox) ----

  /** One attachment: its CNI network made or brought in line, its interface made and configured in the runtime's namespace, ports published; all undone if a step fails. */
  attachCni(req: CniAttachRequest): Promise<{ network: NetworkRecord; endpoint: EndpointRecord }> {
    return this.cni.attach(req);
  }

  /** Removes the attachment, and the network's kernel state and record with its last one; succeeds for one already gone. */
  detachCni(networkName: string, id: string, legacy?: CniLegacyAttachment): Promise<void> {
    return this.cni.detach(networkName, id, legacy);
  }

  /** Keep a CNI network with no attachment left this long before removing it (the daemon: churn costs no bridge and rules each time). */
  setCniLinger(ms: number): void {
    this.cni.setLinger(ms);
  }

  /** This host's attachments of a CNI network, for GC. */
  cniAttachments(networkName: string): Promise<EndpointRecord[]> {
    return this.cni.list(networkName);
  }

  // ---- crash recovery ----

  /** Makes the kernel match the store: what persisted networks need, dead sandboxes removed, orphans removed. */
  reconcile(): Promise<ReconcileReport> {
    return this.reconciler.reconcile();
  }

  /** Removes sandboxes whose foreground owner is gone or whose namespace vanished. */
  gcSandboxes(): Promise<string[]> {
    return this.reconciler.gcSandboxes();
  }

  /** After this host was away: its endpoints on global networks made consistent with the cluster again. */
  reclaimGlobalEndpoints(log: (line: string) => void): Promise<Reclaimed> {
    return this.reclaim.run(log);
  }
}
