// The bridge driver: a Linux bridge per network with the gateway address on
// it, a veth per endpoint, and the firewall rules for NAT, isolation, icc and
// published ports.
import { readFileSync } from 'node:fs';
import { Netlink, writeSysctl } from '../../netlink/index.js';
import type { LinkReaper } from '../../netlink/link-reaper.js';
import type { Firewall, NetworkRules } from '../../firewall/index.js';
import { StrandError } from '../../common/errors.js';
import { NAME_PREFIX, hostVethName, idFromName, shortId, tempVethName } from '../../core/ids.js';
import type { Driver, EndpointRecord, EndpointRequest, JoinInfo, NetworkRecord } from '../../core/types.js';
import { networkGateways } from '../../core/types.js';
import { bridgeSettings } from './options.js';

let boot: string | undefined;
/** This boot's id: ifindexes start over at every boot. */
function bootId(): string {
  return (boot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
}

export class BridgeDriver implements Driver {
  readonly name = 'bridge';
  readonly capabilities = { scope: 'local', connectivityScope: 'local', needsIpam: true } as const;

  private fwOpen: Promise<Firewall> | undefined;

  constructor(
    /** The host namespace's netlink, where bridges and host-side veths live. */
    private readonly nl: Netlink,
    /** Opens the firewall; called only when rules are touched (detecting the backend spawns processes). */
    private readonly openFirewall: () => Promise<Firewall>,
    /**
     * In a daemon: removes endpoints' veths on another thread, after the
     * answer (the kernel's ~16 ms per deletion would hold both). Without one,
     * a deletion is done before deleteEndpoint returns.
     */
    private readonly reaper?: LinkReaper,
  ) {}

  private firewall(): Promise<Firewall> {
    return (this.fwOpen ??= this.openFirewall());
  }

  validateNetwork(network: NetworkRecord, existing: NetworkRecord[]): Record<string, string> {
    const settings: Record<string, string> = { ...bridgeSettings(network, existing) };
    // A bridge that exists before its network does is someone else's: the network goes without it.
    if (this.nl.links.find(settings.bridge!)) settings.adopted = 'true';
    return settings;
  }

  /** The boot and the bridge's ifindex: a bridge made anew (or a reboot) gives another one. */
  networkFingerprint(network: NetworkRecord): string | undefined {
    const found = this.nl.links.find(network.driverState.bridge!);
    return found?.kind === 'bridge' ? `${bootId()}/${found.index}` : 'absent';
  }

  private rules(network: NetworkRecord): NetworkRules {
    const st = network.driverState;
    return {
      id: shortId(network.id),
      bridge: st.bridge!,
      subnets: network.subnets.map((s) => s.subnet),
      icc: st.icc === 'true',
      internal: network.internal,
      masquerade: st.masquerade === 'true',
      // Set by the overlay driver for its VXLAN port.
      ...(st.untrackUdpPort ? { untrackedUdpPort: Number(st.untrackUdpPort) } : {}),
    };
  }

  /** Idempotent: an existing bridge of that name is taken over and brought in line. */
  async createNetwork(network: NetworkRecord): Promise<void> {
    this.ensureBridge(network);
    await this.ensureRules(network);
  }

  /** The bridge, up, with its MTU, the gateway addresses, and the sysctls its traffic needs. */
  ensureBridge(network: NetworkRecord): { created: boolean } {
    const st = network.driverState;
    const bridge = st.bridge!;
    const mtu = Number(st.mtu);
    const found = this.nl.links.find(bridge);
    if (found && found.kind !== 'bridge') throw new StrandError('exists', `link "${bridge}" exists and is not a bridge; choose another bridge.name`);
    if (found && st.forceAddress !== undefined) this.replaceOtherAddresses(network);
    if (found) this.nl.links.set(bridge, { up: true, mtu });
    else this.nl.links.add({ kind: 'bridge', name: bridge, mtu, up: true });
    if (st.promisc === 'true') this.nl.links.set(bridge, { promisc: true });
    for (const s of network.subnets) {
      if (s.gateway) this.nl.addresses.add(bridge, `${s.gateway}/${s.subnet.split('/')[1]}`, { replace: true, noDad: true });
    }
    // Forwarding for the containers' traffic; route_localnet so 127.0.0.1 can reach a published port;
    // bridge traffic through iptables so icc=false and isolation apply within a bridge too.
    writeSysctl('net.ipv4.ip_forward', 1);
    if (network.subnets.some((s) => s.family === 6)) writeSysctl('net.ipv6.conf.all.forwarding', 1);
    writeSysctl(`net.ipv4.conf.${bridge}.route_localnet`, 1);
    writeSysctl('net.bridge.bridge-nf-call-iptables', 1);
    writeSysctl('net.bridge.bridge-nf-call-ip6tables', 1);
    return { created: !found };
  }

  /**
   * As the reference CNI plugin (forceAddress): a bridge that carries the
   * network's gateway must not hold another address of that family unless
   * replacing it was asked for.
   */
  private replaceOtherAddresses(network: NetworkRecord): void {
    const bridge = network.driverState.bridge!;
    const have = this.nl.addresses.list({ dev: bridge }).filter((a) => a.scope === 0);
    for (const s of network.subnets) {
      if (!s.gateway) continue;
      const wanted = `${s.gateway}/${s.subnet.split('/')[1]}`;
      for (const a of have.filter((x) => x.family === s.family && x.cidr !== wanted)) {
        if (network.driverState.forceAddress !== 'true') throw new StrandError('exists', `"${bridge}" already has an IP address different from ${wanted} (${a.cidr}); set forceAddress (--opt force_address=true) to replace it`);
        this.nl.addresses.delete(bridge, a.cidr, { missingOk: true });
      }
    }
  }

  /** strand's base chains and the network's forwarding, NAT, icc and isolation rules. */
  async ensureRules(network: NetworkRecord): Promise<void> {
    const fw = await this.firewall();
    await fw.ensureBase();
    await fw.addNetwork(this.rules(network));
  }

  async deleteNetwork(network: NetworkRecord, others: NetworkRecord[] = []): Promise<void> {
    await this.reaper?.drain();
    const fw = await this.firewall();
    await fw.removeNetwork(this.rules(network));
    // A bridge strand found, or that another network still uses, stays.
    const shared = others.some((o) => o.driver === this.name && o.driverState.bridge === network.driverState.bridge);
    if (network.driverState.adopted !== 'true' && !shared) this.nl.links.delete(network.driverState.bridge!, { missingOk: true });
    // The last network gone: strand's own chains and jumps go too, leaving the host's tables as they were.
    const left = await fw.inventory();
    if (!left.networks.length && !left.endpoints.length) await fw.removeAll();
  }

  async createEndpoint({ network, endpoint, sandboxNs }: EndpointRequest): Promise<Record<string, string>> {
    const mtu = Number(network.driverState.mtu);
    const hostVeth = hostVethName(endpoint.id);
    await this.reaper?.settled(hostVeth); // an endpoint of this id removed a moment ago
    // With the sandbox known, its end is made right inside it under its final name: no move, no rename.
    const sandboxVeth = sandboxNs ? endpoint.ifName : tempVethName(endpoint.id);
    this.nl.links.add({
      kind: 'veth',
      name: hostVeth,
      master: network.driverState.bridge!,
      mtu,
      up: true,
      peer: { name: sandboxVeth, mtu, ...(endpoint.mac ? { mac: endpoint.mac } : {}), ...(sandboxNs ? { netns: sandboxNs } : {}) },
      // Queues for per-CPU steering, when the network's view asks for them (the overlay's does).
      ...(network.driverState.vethQueues ? { queues: Number(network.driverState.vethQueues) } : {}),
    });
    try {
      // Hairpin lets a container reach its own published port through the host.
      if (network.driverState.hairpin !== 'false') this.nl.links.setBridgePort(hostVeth, { hairpin: true });
    } catch (err) {
      this.nl.links.delete(hostVeth, { missingOk: true });
      throw err;
    }
    return { hostVeth, sandboxVeth };
  }

  async deleteEndpoint(_network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    const hostVeth = endpoint.driverState.hostVeth ?? hostVethName(endpoint.id);
    if (!this.reaper) return this.nl.links.delete(hostVeth, { missingOk: true });
    // The record goes now; a veth the reaper fails to remove is an orphan that reconcile removes.
    this.reaper.delete(hostVeth).catch((err: Error) => console.error(`strand: removing ${hostVeth}: ${err.message}`));
  }

  async join({ network, endpoint, sandboxNs }: EndpointRequest): Promise<JoinInfo> {
    return {
      srcName: endpoint.driverState.sandboxVeth ?? tempVethName(endpoint.id),
      inSandbox: sandboxNs !== undefined,
      ...networkGateways(network),
      routes: [],
      // An internal network offers no way out, so no default route through it.
      noDefaultRoute: network.internal,
    };
  }

  async leave(): Promise<void> {}

  private endpointPorts(network: NetworkRecord, endpoint: EndpointRecord) {
    const defaultHostIp = network.driverState.hostBindingIpv4 ?? '';
    const ports = endpoint.ports.map((p) => ({ proto: p.proto, hostIp: p.hostIp || defaultHostIp, hostPort: p.hostPort, containerPort: p.containerPort }));
    return endpoint.addresses.map((cidr) => ({
      endpointId: shortId(endpoint.id),
      networkId: shortId(network.id),
      bridge: network.driverState.bridge!,
      containerIp: cidr.split('/')[0]!,
      ports,
    }));
  }

  async programExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    if (!endpoint.ports.length) return;
    if (network.internal) throw new StrandError('invalid', `network "${network.name}" is internal: it cannot publish ports`);
    const fw = await this.firewall();
    for (const e of this.endpointPorts(network, endpoint)) await fw.publish(e);
  }

  async revokeExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    if (!endpoint.ports.length) return;
    const fw = await this.firewall();
    // Without its addresses (a CNI DEL with no result to tell them), the rules are found by the endpoint's id.
    if (!endpoint.addresses.length) return fw.removeEndpointById(shortId(endpoint.id));
    for (const e of this.endpointPorts(network, endpoint)) await fw.unpublish(e);
  }

  /** After a restart: the bridge, its rules, and every surviving endpoint veth back on it. */
  async restoreNetwork(network: NetworkRecord, endpoints: EndpointRecord[]): Promise<void> {
    await this.createNetwork(network);
    for (const ep of endpoints) {
      const hostVeth = ep.driverState.hostVeth ?? hostVethName(ep.id);
      if (this.nl.links.find(hostVeth)) {
        this.nl.links.set(hostVeth, { master: network.driverState.bridge!, up: true });
        if (network.driverState.hairpin !== 'false') this.nl.links.setBridgePort(hostVeth, { hairpin: true });
      }
      await this.programExternalConnectivity(network, ep);
    }
  }

  /** Bridges, veths and rule sets named like ours that no record owns; removes them. */
  async orphans(networks: NetworkRecord[], endpoints: EndpointRecord[]): Promise<string[]> {
    const bridges = new Set(networks.filter((n) => n.driver === this.name).map((n) => n.driverState.bridge));
    const eps = new Set(endpoints.map((e) => shortId(e.id)));
    const removed: string[] = [];
    for (const link of this.nl.links.list()) {
      const ownBridge = idFromName(link.name, NAME_PREFIX.bridge) !== undefined && link.kind === 'bridge' && !bridges.has(link.name);
      const epId = idFromName(link.name, NAME_PREFIX.hostVeth) ?? idFromName(link.name, NAME_PREFIX.tempVeth);
      if (ownBridge || (epId !== undefined && link.kind === 'veth' && !eps.has(epId))) {
        this.nl.links.delete(link.index, { missingOk: true });
        removed.push(`link ${link.name}`);
      }
    }
    const fw = await this.firewall();
    const inventory = await fw.inventory();
    const nets = new Set(networks.map((n) => shortId(n.id)));
    // Only ids shaped like core's: CNI attachments (ids "cni…") are CNI's to DEL and GC.
    const ours = (id: string): boolean => /^[0-9a-f]{12}$/.test(id);
    for (const id of inventory.endpoints.filter((id) => ours(id) && !eps.has(id))) {
      await fw.removeEndpointById(id);
      removed.push(`port rules of endpoint ${id}`);
    }
    for (const id of inventory.networks.filter((id) => ours(id) && !nets.has(id))) {
      await fw.removeNetworkById(id);
      removed.push(`rules of network ${id}`);
    }
    return removed;
  }
}
