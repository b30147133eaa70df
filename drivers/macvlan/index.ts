// The macvlan driver: containers get a macvlan interface on a parent (the
// underlay link) in bridge, private, vepa or passthru mode, with addresses of
// the underlay's subnet, so they are peers of the hosts on that network.
import { StrandError } from '../../common/errors.js';
import { KernelError, Netlink, type MacvlanMode } from '../../netlink/index.js';
import { tempVethName } from '../../core/ids.js';
import type { Driver, EndpointRecord, EndpointRequest, JoinInfo, NetworkRecord } from '../../core/types.js';
import { networkGateways } from '../../core/types.js';

const MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];
const KEYS = ['parent', 'macvlan_mode', 'mtu'];

export class MacvlanDriver implements Driver {
  readonly name = 'macvlan';
  readonly capabilities = { scope: 'local', connectivityScope: 'global', needsIpam: true, sandboxOnlyInterface: true } as const;

  constructor(private readonly nl: Netlink) {}

  validateNetwork(network: NetworkRecord, existing: NetworkRecord[]): Record<string, string> {
    for (const key of Object.keys(network.options)) {
      if (!KEYS.includes(key)) throw new StrandError('invalid', `unknown option "${key}" for the macvlan driver; known: ${KEYS.join(', ')}`);
    }
    const parent = network.options.parent;
    if (!parent) throw new StrandError('invalid', 'the macvlan driver needs --opt parent=INTERFACE (the underlay link)');
    if (/\.\d+$/.test(parent) && !this.nl.links.find(parent)) {
      // Docker would make the 802.1q sub-interface; this kernel has no 802.1q link type, so nobody can.
      throw new StrandError('invalid', `parent "${parent}" is a VLAN sub-interface that does not exist, and this kernel has no 802.1q (VLAN) support to make it; use an untagged parent such as "${parent.replace(/\.\d+$/, '')}"`);
    }
    const link = this.nl.links.find(parent);
    if (!link) throw new StrandError('not-found', `parent interface "${parent}" does not exist`);
    const mode = network.options.macvlan_mode ?? 'bridge';
    if (!(MODES as readonly string[]).includes(mode)) throw new StrandError('invalid', `invalid macvlan_mode "${mode}": use one of ${MODES.join(', ')}`);
    const mtu = network.options.mtu ?? String(link.mtu);
    if (!/^\d+$/.test(mtu) || Number(mtu) < 68 || Number(mtu) > link.mtu) {
      throw new StrandError('invalid', `invalid mtu "${mtu}": a macvlan's MTU must be 68 to ${link.mtu} (its parent's)`);
    }
    if (network.internal) throw new StrandError('invalid', 'a macvlan network cannot be internal: its traffic goes straight out of the parent');
    const twin = existing.find((n) => n.driver === this.name && n.driverState.parent === parent && (mode === 'passthru' || n.driverState.mode === 'passthru'));
    if (twin) throw new StrandError('in-use', `parent "${parent}" is taken in passthru mode by network "${twin.name}"`);
    return { parent, mode, mtu };
  }

  async createNetwork(network: NetworkRecord): Promise<void> {
    // The parent must be up for its macvlans to carry traffic.
    this.nl.links.set(network.driverState.parent!, { up: true });
  }

  async deleteNetwork(): Promise<void> {}

  async createEndpoint({ network, endpoint, sandboxNs }: EndpointRequest): Promise<Record<string, string>> {
    const st = network.driverState;
    const name = sandboxNs ? endpoint.ifName : tempVethName(endpoint.id);
    const passthru = st.mode === 'passthru';
    try {
      this.nl.links.add({
        kind: 'macvlan',
        name,
        parent: st.parent!,
        mode: st.mode as MacvlanMode,
        mtu: Number(st.mtu),
        // A passthru macvlan takes its parent's MAC whatever it is given.
        ...(endpoint.mac && !passthru ? { mac: endpoint.mac } : {}),
        ...(sandboxNs ? { netns: sandboxNs } : {}),
      });
    } catch (err) {
      // The kernel says only EINVAL when a passthru parent already has its one macvlan.
      if (passthru && err instanceof KernelError && err.errnoName === 'EINVAL') {
        throw new StrandError('in-use', `network "${network.name}" is in macvlan passthru mode: parent "${st.parent}" carries one container at a time and already has one; remove that container first, or use mode bridge for several`);
      }
      throw err;
    }
    if (passthru) endpoint.mac = this.macOf(name, sandboxNs);
    return { link: name, inSandbox: sandboxNs ? 'true' : 'false' };
  }

  /** The MAC the kernel gave a link (in the sandbox when it went there). */
  private macOf(name: string, sandboxNs: EndpointRequest['sandboxNs']): string {
    const nl = sandboxNs ? Netlink.open(sandboxNs) : this.nl;
    try {
      return nl.links.get(name).mac ?? '';
    } finally {
      if (nl !== this.nl) nl.close();
    }
  }

  /** The macvlan lives in the sandbox; it goes with the namespace, or here if it never moved. */
  async deleteEndpoint(_network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    if (endpoint.driverState.inSandbox !== 'true') this.nl.links.delete(tempVethName(endpoint.id), { missingOk: true });
  }

  async join({ network, endpoint, sandboxNs }: EndpointRequest): Promise<JoinInfo> {
    return {
      srcName: endpoint.driverState.link ?? tempVethName(endpoint.id),
      inSandbox: sandboxNs !== undefined,
      ...networkGateways(network),
      routes: [],
    };
  }

  async leave(): Promise<void> {}

  async programExternalConnectivity(network: NetworkRecord, endpoint: EndpointRecord): Promise<void> {
    if (endpoint.ports.length) throw new StrandError('invalid', `network "${network.name}" is a macvlan network: containers are reached at their own addresses, ports cannot be published`);
  }

  async revokeExternalConnectivity(): Promise<void> {}

  async restoreNetwork(network: NetworkRecord): Promise<void> {
    await this.createNetwork(network);
  }
}
