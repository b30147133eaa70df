// strand-overlay: the CNI front door to strand's overlay networks. Every verb
// runs inside `strand daemon` (handed over by the native front on
// $STRAND_RUN_DIR/cni.sock), because an attachment must go through core's
// Controller: the endpoint record and its cluster-wide entry
// (core/global/endpoints, which the other hosts' agents turn into FDB and
// neighbour entries) are saved in one transaction, and the local side needs
// this host's registered VTEP. Without the daemon every verb fails with code
// 11 and touches nothing.
//
// An attachment is a detached endpoint (the runtime owns the namespace) with a
// "cni…" id: core's reconcile restores its veth on a daemon restart like any
// endpoint of the network, and never takes it for an orphan.
import { Netlink } from '../../../netlink/index.js';
import { CNI_LABEL, type Controller } from '../../../core/controller.js';
import { configureEndpoint } from '../../../core/sandbox-net.js';
import { hostVethName } from '../../../core/ids.js';
import type { NetworkRecord } from '../../../core/types.js';
import { networkGateways } from '../../../core/types.js';
import { getHost } from '../../../cluster/hosts.js';
import { contains, formatIp, parseCidr } from '../../../ipam/cidr.js';
import type { Owner } from '../../../ipam/types.js';
import { checkCniArgKeys } from '../protocol/args.js';
import { attachmentId } from '../protocol/attachment.js';
import { checkContainerSide, failCheck } from '../protocol/check-container.js';
import { withHandles } from '../protocol/handles.js';
import { requestedIps } from '../ipam/config.js';
import { parseOverlayConf } from './config.js';
import { portMappings, requestedMac } from '../protocol/runtime-args.js';
import { CniError, CNI_CODES, type CniRequest, type CniResult, type PluginHandlers } from '../protocol/types.js';
import { runDir } from '../../../common/defaults.js';
import { clusterDataPlane } from '../../../runtime/index.js';

/** What the daemon gives the plugin: its controller, and whether it runs the overlay agent. */
export interface OverlayDaemon {
  controller: Controller;
  /** `strand daemon --advertise-addr`: this host's VTEP is registered and its peers programmed. */
  agent: boolean;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

const runDirOf = (req: CniRequest): string => runDir(req.env ?? {});

function noDaemon(req: CniRequest, code: number): CniError {
  return new CniError(
    code,
    `strand-overlay needs a running strand daemon with its overlay agent ("strand daemon --store URL --advertise-addr IP --host-id ID"), and none answers on ${runDirOf(req)}/cni.sock: start it and try again; nothing was changed`,
  );
}

/** The daemon, with its overlay agent running; code 11 (the runtime retries) otherwise. */
function daemonFor(daemon: OverlayDaemon | undefined, req: CniRequest): Controller {
  if (!daemon) throw noDaemon(req, CNI_CODES.tryAgainLater);
  if (!daemon.agent) {
    throw new CniError(CNI_CODES.tryAgainLater, 'strand daemon runs here without its overlay agent: restart it with --store URL --advertise-addr IP --host-id ID; nothing was changed');
  }
  return daemon.controller;
}

async function findOverlay(ctl: Controller, ref: string): Promise<NetworkRecord> {
  const net = await ctl.lookupNetwork(ref);
  if (!net) throw new CniError(CNI_CODES.invalidConfig, `network "${ref}" does not exist: create it with "strand network create -d overlay --subnet CIDR ${ref}"`);
  if (net.driver !== 'overlay') {
    throw new CniError(CNI_CODES.invalidConfig, `network "${ref}" is a ${net.driver} network, not an overlay one: strand-overlay attaches only to networks made with "strand network create -d overlay"`);
  }
  return net;
}

const ownerOf = (id: string, ifName: string): Owner => ({ endpointId: id, ifName });

/** One address per subnet of the network, the requested one where given; each requested must lie in a subnet (code 7). */
async function allocate(ctl: Controller, network: NetworkRecord, req: CniRequest, id: string): Promise<string[]> {
  const wanted = requestedIps(req);
  const placed = new Map<number, string>();
  for (const ip of wanted) {
    const i = network.subnets.findIndex((s) => contains(parseCidr(s.subnet), ip));
    const text = formatIp(ip);
    const where = network.subnets.map((s) => s.subnet).join(', ');
    if (i < 0) throw new CniError(CNI_CODES.invalidConfig, `requested IP ${text} is not in network "${network.name}" (subnet ${where})`);
    if (placed.has(i)) throw new CniError(CNI_CODES.invalidConfig, `requested IPs ${placed.get(i)} and ${text} are both in subnet ${network.subnets[i]!.subnet}; one address per subnet`);
    if (text === network.subnets[i]!.gateway) throw new CniError(CNI_CODES.invalidConfig, `requested IP ${text} is the gateway of network "${network.name}"`);
    placed.set(i, text);
  }
  const owner = { ...ownerOf(id, req.ifName), attachment: { network: req.config.name, containerId: req.containerId } };
  return ctl.allocateAddresses(network, owner, [...placed.values()]);
}

/** Removes an attachment's endpoint (interface, published ports, record and cluster-wide entry) and frees its addresses. */
async function detach(ctl: Controller, id: string, ifName: string): Promise<void> {
  await ctl.deleteDetachedEndpoint(id);
  await ctl.releaseAddresses(ownerOf(id, ifName));
}

export function overlayHandlers(daemon?: OverlayDaemon): PluginHandlers {
  return {
    async add(req) {
      const ctl = daemonFor(daemon, req);
      const conf = parseOverlayConf(req.config);
      checkCniArgKeys(req.args, ['IP', 'MAC']);
      const mac = requestedMac(req)?.toLowerCase();
      if (mac !== undefined && (!MAC.test(mac) || parseInt(mac.slice(0, 2), 16) & 1)) throw new CniError(CNI_CODES.invalidConfig, `invalid requested MAC "${mac}": give a unicast address like 02:00:00:00:00:01`);
      const ports = portMappings(req);
      const network = await findOverlay(ctl, conf.network);
      const id = attachmentId(req.config.name, req.containerId, req.ifName);
      return withHandles(req.netns, async ({ host, ns, inside }) => {
        if (inside.links.find(req.ifName)) throw new CniError(CNI_CODES.internal, `container interface ${req.ifName} already exists in ${req.netns}`);
        if (await ctl.getDetachedEndpoint(id)) throw new CniError(CNI_CODES.internal, `attachment ${req.containerId}/${req.ifName} of network ${req.config.name} already exists: DEL it first`);
        // No record: whatever this attachment still holds is a crashed ADD's, never DELed.
        await ctl.releaseAddresses(ownerOf(id, req.ifName));
        const addresses = await allocate(ctl, network, req, id);
        try {
          const labels = { [CNI_LABEL.network]: req.config.name, [CNI_LABEL.containerId]: req.containerId, [CNI_LABEL.ifName]: req.ifName };
          // The veth's pod end is made right inside the pod, under its final name.
          const endpoint = await ctl.createDetachedEndpoint(network.id, { id, addresses, mac: mac ?? '', labels, sandbox: { ns, ifName: req.ifName } });
          const { join } = await ctl.joinDetached(id, ns);
          configureEndpoint(host, ns, endpoint, join);
          if (ports.length) await ctl.publishDetached(id, ports, []);
          return result(req, host, inside, network, endpoint.addresses, join.noDefaultRoute === true);
        } catch (err) {
          // Nothing half-made: the veth, the records (and with them the peers' entries) and the addresses go.
          await detach(ctl, id, req.ifName).catch(() => undefined);
          throw err;
        }
      });
    },

    async del(req) {
      const ctl = daemonFor(daemon, req);
      // Only the attachment's id is needed: DEL works with the namespace gone and the network config changed.
      await detach(ctl, attachmentId(req.config.name, req.containerId, req.ifName), req.ifName);
    },

    async check(req) {
      const ctl = daemonFor(daemon, req);
      const conf = parseOverlayConf(req.config);
      const network = await findOverlay(ctl, conf.network);
      const id = attachmentId(req.config.name, req.containerId, req.ifName);
      const endpoint = (await ctl.getDetachedEndpoint(id)) ?? failCheck(`strand has no endpoint for ${req.containerId}/${req.ifName} on network ${req.config.name}`);
      if (endpoint.networkId !== network.id) failCheck(`the endpoint of ${req.containerId}/${req.ifName} is on another network than "${conf.network}"`);
      if (!(await ctl.isPublishedToCluster(endpoint))) failCheck(`the endpoint of ${req.containerId}/${req.ifName} is not published to the other hosts (core/global/endpoints)`);
      await withHandles(req.netns, async ({ host, inside }) => {
        const bridge = clusterDataPlane(host).bridgeDevice(network.id);
        const br = host.links.find(bridge) ?? failCheck(`overlay bridge ${bridge} does not exist`);
        const vethName = hostVethName(id);
        const veth = host.links.find(vethName) ?? failCheck(`host veth ${vethName} of ${req.containerId}/${req.ifName} does not exist`);
        if (veth.master !== br.index) failCheck(`host veth ${vethName} is not attached to bridge ${bridge}`);
        checkContainerSide(inside, req, req.config.prevResult!);
      });
    },

    async gc(req) {
      const ctl = daemonFor(daemon, req);
      // As strand-ipam: without a list, live attachments cannot be told from stale ones.
      if (req.validAttachments === undefined) return;
      const net = await ctl.lookupNetwork(parseOverlayConf(req.config).network);
      if (!net) return;
      const keep = new Set(req.validAttachments.map((a) => attachmentId(req.config.name, a.containerId, a.ifName)));
      // This host's endpoints only; other hosts' GC collects theirs.
      for (const ep of await ctl.endpointsOf(net)) {
        const ifName = ep.labels?.[CNI_LABEL.ifName];
        if (ep.labels?.[CNI_LABEL.network] !== req.config.name || ifName === undefined || keep.has(ep.id)) continue;
        await detach(ctl, ep.id, ifName);
      }
    },

    async status(req) {
      if (!daemon) throw noDaemon(req, CNI_CODES.notReady);
      if (!daemon.agent) throw new CniError(CNI_CODES.notReady, 'strand daemon runs here without its overlay agent: restart it with --store URL --advertise-addr IP --host-id ID');
      const ctl = daemon.controller;
      const conf = parseOverlayConf(req.config);
      let registered: boolean;
      let network: NetworkRecord | undefined;
      try {
        registered = (await getHost(ctl.store, ctl.hostId)) !== undefined;
        network = await ctl.lookupNetwork(conf.network);
      } catch (err) {
        throw new CniError(CNI_CODES.notReady, `the strand store cannot be read: ${(err as Error).message}`);
      }
      if (!registered) throw new CniError(CNI_CODES.notReady, `host "${ctl.hostId}" has no live overlay lease in the store: the agent cannot renew it`);
      if (!network) throw new CniError(CNI_CODES.notReady, `network "${conf.network}" does not exist: create it with "strand network create -d overlay --subnet CIDR ${conf.network}"`);
      if (network.driver !== 'overlay') throw new CniError(CNI_CODES.invalidConfig, `network "${conf.network}" is a ${network.driver} network, not an overlay one`);
    },
  };
}

/** The ADD result: bridge, host veth, container interface; addresses with their gateways; default routes unless internal. */
function result(req: CniRequest, host: Netlink, inside: Netlink, network: NetworkRecord, addresses: string[], internal: boolean): CniResult {
  const br = host.links.get(clusterDataPlane(host).bridgeDevice(network.id));
  const veth = host.links.get(hostVethName(attachmentId(req.config.name, req.containerId, req.ifName)));
  const ctr = inside.links.get(req.ifName);
  const gws = networkGateways(network);
  const gwOf = (a: string): string | undefined => (a.includes(':') ? gws.gatewayV6 : gws.gateway);
  const routes = internal ? [] : addresses.filter((a) => gwOf(a)).map((a) => ({ dst: a.includes(':') ? '::/0' : '0.0.0.0/0', gw: gwOf(a)! }));
  const dns = req.config.dns && Object.keys(req.config.dns).length ? req.config.dns : undefined;
  return {
    cniVersion: req.config.cniVersion,
    interfaces: [
      { name: br.name, mac: br.mac ?? '' },
      { name: veth.name, mac: veth.mac ?? '' },
      { name: ctr.name, mac: ctr.mac ?? '', sandbox: req.netns, mtu: ctr.mtu },
    ],
    ips: addresses.map((address) => ({ address, ...(gwOf(address) ? { gateway: gwOf(address)! } : {}), interface: 2 })),
    routes,
    ...(dns ? { dns } : {}),
  };
}
