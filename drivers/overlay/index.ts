// The overlay driver (global scope): one VXLAN network identifier per network,
// claimed cluster-wide in the store; on each host that has endpoints on it, a
// Linux bridge with a vxlan device as a port (UDP 4789, learning off, no
// multicast, ARP answered from the device's neighbour table) and the
// containers' veths. Peers (FDB + neighbour entries) are the agent's job
// (agent/overlay-peers.ts).
//
// Outbound NAT: every host's bridge carries the network's gateway address and
// the bridge driver's masquerade rules, so traffic leaves through the local
// host. The same gateway address on every host is safe because ARP never
// crosses the vxlan device (proxy mode answers only for remote endpoints).
import { Netlink, applySteering, onlineCpus, steeringPlan, type SteeringPlan } from '../../netlink/index.js';
import type { Firewall } from '../../firewall/index.js';
import { StrandError } from '../../common/errors.js';
import { shortId } from '../../core/ids.js';
import type { Store } from '../../store/types.js';
import type { Driver, EndpointRecord, EndpointRequest, JoinInfo, NetworkRecord } from '../../core/types.js';
import { BridgeDriver } from '../bridge/index.js';
import { OVERLAY_PREFIX, VXLAN_PORT, overlayBridgeName, vxlanName } from './names.js';
import { listHosts, requireHost } from '../../cluster/hosts.js';
import { overlayMtu, setOverlayMtu } from './mtu.js';
import { allocateVni, releaseVni } from './vni.js';
import { overlaySettings } from './options.js';

export interface Cluster {
  store: Store;
  hostId: string;
}

export class OverlayDriver implements Driver {
  readonly name = 'overlay';
  readonly capabilities = { scope: 'global', connectivityScope: 'global', needsIpam: true } as const;
  /** The host side (bridge, veths, NAT and isolation rules) is the bridge driver's, on our bridge name. */
  private readonly bridge: BridgeDriver;
  /** Per-CPU steering for containers' veths (undefined on one CPU); the CPUs online when first needed. */
  private steering?: SteeringPlan | null;
  private steeringWarned = false;

  constructor(
    private readonly nl: Netlink,
    openFirewall: () => Promise<Firewall>,
    /** The shared store and this host's id; a getter because the controller decides the id. */
    private readonly cluster: () => Cluster,
  ) {
    this.bridge = new BridgeDriver(nl, openFirewall);
  }

  validateNetwork(network: NetworkRecord): Record<string, string> {
    return overlaySettings(network);
  }

  /** The network as the bridge driver sees it on this host. */
  private view(network: NetworkRecord, mtu: number): NetworkRecord {
    const plan = this.steeringFor(network);
    return {
      ...network,
      // untrackUdpPort: the VXLAN packets skip conntrack, so no NAT rule on the host can rewrite them (README, Checksum offload).
      driverState: {
        ...network.driverState, bridge: overlayBridgeName(network.id), mtu: String(mtu), icc: 'true', masquerade: 'true', hairpin: 'true', untrackUdpPort: String(VXLAN_PORT),
        ...(plan ? { vethQueues: String(plan.queues) } : {}),
      },
    };
  }

  private steeringFor(network: NetworkRecord): SteeringPlan | undefined {
    if (network.driverState.steering === 'false') return undefined;
    if (this.steering === undefined) this.steering = steeringPlan(onlineCpus()) ?? null;
    return this.steering ?? undefined;
  }

  /** Claims the VNI (stored in the record core persists next), then builds this host's side. */
  async createNetwork(network: NetworkRecord): Promise<void> {
    const { store } = this.cluster();
    const requested = network.driverState.requestedVni;
    if (!network.driverState.vni) network.driverState.vni = String(await allocateVni(store, network.id, requested ? Number(requested) : undefined));
    try {
      await this.ensureLocal(network);
    } catch (err) {
      await releaseVni(store, network.id, Number(network.driverState.vni));
      throw err;
    }
  }

  /**
   * This host's bridge, NAT rules and vxlan device for the network, made or
   * brought in line. With `rules: 'if-new'` (endpoint creation) the firewall
   * is only touched when the bridge had to be made: loading rules costs a
   * process spawn, and reconcile restores rules that went missing.
   */
  async ensureLocal(network: NetworkRecord, options: { rules?: 'always' | 'if-new' } = {}): Promise<NetworkRecord> {
    const { store, hostId } = this.cluster();
    const hosts = await listHosts(store);
    const host = await requireHost(store, hostId, hosts);
    const addr = this.nl.addresses.list({ family: 4 }).find((a) => a.ip === host.vtep);
    if (!addr) throw new StrandError('unavailable', `advertise address ${host.vtep} of host "${hostId}" is on no interface here; restart the agent with this host's address`);
    const underlay = this.nl.links.get(addr.index);
    // The smallest underlay among live hosts (this one's as it is now), unless --opt mtu fixed it.
    const mtu = overlayMtu(network, hosts, underlay.mtu);
    const view = this.view(network, mtu);
    const { created } = this.bridge.ensureBridge(view);
    if (created || options.rules !== 'if-new') await this.bridge.ensureRules(view);
    const vni = Number(network.driverState.vni);
    const name = vxlanName(network.id);
    const bridge = overlayBridgeName(network.id);
    let found = this.nl.links.find(name);
    const right = found?.kind === 'vxlan' && found.vxlan?.vni === vni && found.vxlan.local === host.vtep && found.vxlan.underlay === addr.index && found.vxlan.proxy === true && !found.vxlan.learning;
    if (found && !right) {
      // A device from an older address or VNI: its FDB is wrong too; the agent refills the new one.
      this.nl.links.delete(name, { missingOk: true });
      found = undefined;
    }
    if (!found) this.nl.links.add({ kind: 'vxlan', name, vni, local: host.vtep, underlay: addr.index, port: VXLAN_PORT, learning: false, proxy: true, mtu, master: bridge, up: true });
    else this.nl.links.set(name, { master: bridge, up: true });
    // A host with a smaller underlay joined since: existing containers' interfaces follow too.
    if (found && found.mtu !== mtu) setOverlayMtu(this.nl, network.id, mtu);
    return view;
  }

  async deleteNetwork(network: NetworkRecord): Promise<void> {
    await this.removeLocal(network);
    if (network.driverState.vni) await releaseVni(this.cluster().store, network.id, Number(network.driverState.vni));
  }

  /** This host's side only (vxlan device, bridge, rules): the network itself lives on for the other hosts. */
  async removeLocal(network: NetworkRecord): Promise<void> {
    this.nl.links.delete(vxlanName(network.id), { missingOk: true });
    await this.bridge.deleteNetwork(this.view(network, 1500));
  }

  async createEndpoint(req: EndpointRequest): Promise<Record<string, string>> {
    // The first endpoint on a host builds the network's side there.
    const view = await this.ensureLocal(req.network, { rules: 'if-new' });
    const state = await this.bridge.createEndpoint({ ...req, network: view });
    const plan = this.steeringFor(req.network);
    if (plan) this.steer(plan, state, req);
    return state;
  }

  /**
   * A container's packets reach the host on its host-side veth in the sending
   * thread's own context (a veth has no queue), so one CPU would run the
   * container's TCP, the bridge, the encapsulation and, between namespaces of
   * one machine, the receiver too. Steering hands everything after the veth to
   * another CPU: sender and host path run in parallel (README, Throughput).
   * Without it traffic still flows, on one CPU, so a failure is only reported.
   */
  private steer(plan: SteeringPlan, state: Record<string, string>, req: EndpointRequest): void {
    try {
      applySteering(plan, { device: state.sandboxVeth!, ns: req.sandboxNs }, state.hostVeth!);
    } catch (err) {
      if (this.steeringWarned) return;
      this.steeringWarned = true;
      console.error(`strand: cross-CPU steering not set on ${state.hostVeth} (${(err as Error).message}); a container's overlay traffic is processed on its sending CPU`);
    }
  }

  async deleteEndpoint(network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    await this.bridge.deleteEndpoint(this.view(network, 1500), endpoint);
  }

  join(req: EndpointRequest): Promise<JoinInfo> {
    return this.bridge.join({ ...req, network: this.view(req.network, 1500) });
  }

  async leave(): Promise<void> {}

  programExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    return this.bridge.programExternalConnectivity(this.view(network, 1500), endpoint);
  }

  revokeExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    return this.bridge.revokeExternalConnectivity(this.view(network, 1500), endpoint);
  }

  /** Hosts without endpoints and without the devices have nothing to restore. */
  async restoreNetwork(network: NetworkRecord, endpoints: EndpointRecord[]): Promise<void> {
    if (!endpoints.length && !this.nl.links.find(overlayBridgeName(network.id))) return;
    const view = await this.ensureLocal(network);
    await this.bridge.restoreNetwork(view, endpoints);
  }

  /** Overlay bridges and vxlan devices of networks that no longer exist (removed from another host, say). */
  async orphans(networks: NetworkRecord[]): Promise<string[]> {
    const ids = new Set(networks.filter((n) => n.driver === this.name).map((n) => shortId(n.id)));
    const removed: string[] = [];
    // vxlan devices first: they are ports of the bridges.
    const links = this.nl.links.list().sort((a, b) => Number(b.kind === 'vxlan') - Number(a.kind === 'vxlan'));
    for (const link of links) {
      const prefix = link.kind === 'vxlan' ? OVERLAY_PREFIX.vxlan : link.kind === 'bridge' ? OVERLAY_PREFIX.bridge : undefined;
      if (!prefix || !link.name.startsWith(prefix)) continue;
      const id = link.name.slice(prefix.length);
      if (/^[0-9a-f]{12}$/.test(id) && !ids.has(id)) {
        this.nl.links.delete(link.index, { missingOk: true });
        removed.push(`link ${link.name}`);
      }
    }
    return removed;
  }
}
